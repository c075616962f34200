"""The reference training loop, written the plain way, for the throughput comparison.

What a typical PyTorch script does: a torchvision-style Dataset that turns one stored image at a
time into a PIL image and runs per-sample transforms on it (the same augmentations our loop
applies: crop or edge-padded shifts, flip, random erasing), a DataLoader that collates the
batches and copies them to the device, fp32 in the default memory layout, torch.optim.SGD and
torch.nn.utils.clip_grad_norm_, the loss read with .item() every step. Only the data pipeline,
the precision and the layout differ from our loop; the model, data, batch size, optimiser
settings and loss are the same.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


class ImageDataset(torch.utils.data.Dataset):
    """Stored uint8 images (N, H, W, C) with labels; each item is transformed on its own."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, idx: np.ndarray, transform) -> None:
        self.images, self.labels, self.idx, self.transform = images, labels, idx, transform

    def __len__(self) -> int:
        return len(self.idx)

    def __getitem__(self, i: int):
        from PIL import Image

        pixels = self.images[self.idx[i]]
        image = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
        return self.transform(image), int(self.labels[self.idx[i]])


def transforms_for(augment: dict, size: int, mean: list[float], std: list[float]):
    """torchvision transforms equal to our batched augmentation settings (benchmark/augment.py)."""
    from torchvision import transforms as T

    steps = []
    if augment.get("crop"):
        steps.append(T.RandomCrop(int(augment["crop"])))
    if augment.get("hflip"):
        steps.append(T.RandomHorizontalFlip())
    shift = int(augment.get("max_shift", 0))
    if shift:  # a random crop of the padded image is a random shift of up to `shift` pixels
        mode = "edge" if augment.get("shift_fill") == "nearest" else "constant"
        steps.append(T.RandomCrop(int(augment.get("crop") or size), padding=shift, padding_mode=mode))
    steps += [T.ToTensor(), T.Normalize(mean, std)]
    erase = augment.get("erase")
    if erase and erase["p"] > 0:
        steps.append(T.RandomErasing(p=erase["p"], scale=tuple(erase["area"]), ratio=tuple(erase["aspect"]),
                                     value="random"))
    return T.Compose(steps)


def loader(images: np.ndarray, labels: np.ndarray, idx: np.ndarray, augment: dict, mean: list[float],
           std: list[float], batch_size: int, num_workers: int, pin_memory: bool) -> torch.utils.data.DataLoader:
    dataset = ImageDataset(images, labels, idx, transforms_for(augment, images.shape[1], mean, std))
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True,
                                       num_workers=num_workers, pin_memory=pin_memory,
                                       persistent_workers=num_workers > 0)


def sgd(model: torch.nn.Module, train: dict) -> torch.optim.SGD:
    opt = train["optimizer"]
    return torch.optim.SGD(model.parameters(), lr=train["lr"], momentum=opt["momentum"],
                           weight_decay=opt["weight_decay"], nesterov=opt.get("nesterov", False))


def train_steps(model: torch.nn.Module, optimizer: torch.optim.SGD, batches, train: dict, device: torch.device,
                steps: int) -> float:
    """Run `steps` plain SGD steps from the DataLoader `batches` (cycled); return the last loss."""
    model.train()
    done, last = 0, float("nan")
    while done < steps:
        for x, y in batches:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), train["grad_clip_norm"])
            optimizer.step()
            last = loss.item()
            done += 1
            if done == steps:
                break
    return last
