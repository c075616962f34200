"""Methods trained against a fixed teacher: another cell's final weights (distillation, M2m's classifier g).

The teacher is a cell of the same dataset, samples per class, split and seed, trained first by its own
pack (benchmark/grid.py); its pack saves the evaluated state_dict of its Method as weights.pt, and the
student's context names that file and the teacher's settings. The teacher is rebuilt from its settings
with `build_method` and loaded; it is then frozen and stays in eval mode.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from benchmark.methods import Method, MethodContext, build_method, load_class_embeddings
from benchmark.methods.base import model_parameter_groups


def load_teacher(context: MethodContext) -> Method:
    """The student's teacher, rebuilt from `context.teacher_settings`, loaded from `context.teacher`, frozen.

    The teacher's own teacher (a chain of self-distillation generations) is not loaded: only its scores
    and features are used, which need none.
    """
    if context.teacher is None or context.teacher_settings is None:
        raise ValueError("this method needs a teacher's weights and settings (settings: teacher: <method label>)")
    settings = context.teacher_settings
    embeddings = load_class_embeddings(settings["embeddings"])[0] if "embeddings" in settings else None
    own = MethodContext(context.num_classes, context.in_channels, context.class_counts, embeddings)
    teacher = build_method(settings, own)
    teacher.load_state_dict(torch.load(context.teacher, map_location="cpu", weights_only=True))
    return teacher.eval().requires_grad_(False)


class WithTeacher(Method):
    """A model trained against a fixed teacher.

    The teacher is not a submodule: it is not in the state_dict (a student's weights are its own, and
    rebuilding a student as the next generation's teacher needs no chain of teachers), not trained and
    never switched to train mode; `_apply` moves it with the method (`.to(device)`). `teacher` is None
    for a student rebuilt only to predict (a teacher of the next generation).
    """

    supports_mixing = False

    def __init__(self, model: nn.Module, teacher: Method | None) -> None:
        super().__init__(model, None)
        self.__dict__["teacher"] = teacher

    @staticmethod
    def teacher_of(context: MethodContext) -> Method | None:
        return load_teacher(context) if context.teacher is not None else None

    shared = ("teacher",)  # attributes a copy shares instead of copying (the EMA of the recipe copies methods)

    def __deepcopy__(self, memo: dict):
        for name in self.shared:
            value = self.__dict__.get(name)
            if value is not None:
                memo[id(value)] = value
        copied = type(self).__new__(type(self))
        memo[id(self)] = copied
        copied.__dict__.update(copy.deepcopy(self.__dict__, memo))
        return copied

    def _apply(self, fn, recurse: bool = True):
        super()._apply(fn, recurse)
        if self.teacher is not None:
            self.teacher._apply(fn, recurse)
        return self

    def needs_teacher(self) -> Method:
        if self.teacher is None:
            raise RuntimeError(f"{type(self).__name__} was built without its teacher's weights; it can only predict")
        return self.teacher

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)

    def parameter_groups(self, optimizer: dict) -> list[dict]:
        return model_parameter_groups(self.model, optimizer["weight_decay_on"])
