"""SGD with momentum and gradient-norm clipping, without torch.optim.

Why not torch.optim.SGD: its constructor imports torch._dynamo and sympy, 1.5 s per process
on our 2-core machine, paid by every one of thousands of short cell jobs. This is the same
update (tests/test_optim.py checks it step for step against torch.optim.SGD):
    d = g + weight_decay * p;  buf = momentum * buf + d  (buf = d at the first step)
    p -= lr * (d + momentum * buf if nesterov else buf)
"""

from __future__ import annotations

import torch


class SGD:
    def __init__(self, groups: list[dict], lr: float, momentum: float, weight_decay: float,
                 nesterov: bool = False) -> None:
        defaults = {"lr": lr, "momentum": momentum, "weight_decay": weight_decay, "nesterov": nesterov}
        self.param_groups = [{**defaults, **group, "params": list(group["params"])} for group in groups]
        self.state: dict[torch.Tensor, torch.Tensor] = {}

    def parameters(self) -> list[torch.Tensor]:
        return [p for group in self.param_groups for p in group["params"]]

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            if group["weight_decay"]:
                grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
            update = grads
            if group["momentum"]:
                bufs = []
                for p, g in zip(params, grads, strict=True):
                    buf = self.state.get(p)
                    if buf is None:
                        buf = self.state[p] = g.clone()
                    else:
                        buf.mul_(group["momentum"]).add_(g)
                    bufs.append(buf)
                update = torch._foreach_add(grads, bufs, alpha=group["momentum"]) if group["nesterov"] else bufs
            torch._foreach_add_(params, update, alpha=-group["lr"])

    def state_dict(self) -> dict:
        index = {p: i for i, p in enumerate(self.parameters())}
        return {"momentum": {index[p]: buf for p, buf in self.state.items()},
                "lr": [group["lr"] for group in self.param_groups]}

    def load_state_dict(self, state: dict) -> None:
        params = self.parameters()
        self.state = {params[i]: buf for i, buf in state["momentum"].items()}
        for group, lr in zip(self.param_groups, state["lr"], strict=True):
            group["lr"] = lr


@torch.no_grad()
def clip_grad_norm(params: list[torch.Tensor], max_norm: float) -> torch.Tensor:
    """Scale all gradients so their joint L2 norm is at most max_norm; return the norm before."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    scale = (max_norm / (total + 1e-6)).clamp(max=1.0)
    torch._foreach_mul_(grads, scale)
    return total
