"""CUB-200-2011 with DEIC's fixed split (Brigato, Barz, Iocchi, Denzler, "Tune It or Don't Use It",
ICCV-W 2021): the official training set ("trainval", 5,994 images) with DEIC's validation part ("val",
1,994 images; "train" is the other 4,000, 20 per class) recorded as `val_idx` in the prepared metadata,
and the official test set (5,794). The tuned protocol then searches on DEIC's own train/val split
(tune.validation: fixed) and the final cells train on trainval, as DEIC does, so that our tuned
cross-entropy sits beside DEIC's 71.45 % (224 px) and 80.57 % (448 px).

Built from the extracted CUB archive (the download stage of `cub`, its raw_dir) and DEIC's split files
(stage deic_splits@cub, benchmark/data/deic.py, pinned checksums); the two registered names cub_deic
(448-pixel crops of images stored at 512) and cub_deic_224 (224 of 256) differ only in their settings.
"""

from __future__ import annotations

from pathlib import Path

from benchmark.data.cub import FACTS  # the same images, classes and official split as CUB

__all__ = ["FACTS", "build"]


def build(settings: dict) -> dict:
    from benchmark.data import cub
    from benchmark.data.deic import SPLITS, cub_relative_paths, deic_split_indices

    built = cub.build(settings)
    files = {split: Path(settings["splits_dir"]) / f"{split}.txt" for split in SPLITS}
    splits = deic_split_indices(cub_relative_paths(settings), files, train_idx=built["train_idx"],
                                test_idx=built["test_idx"], labels=built["labels"])
    extra = dict(built.get("extra") or {})
    extra.update(val_idx=splits["val"].tolist(), split_source="DEIC datasets/cub (deic_splits@cub)")
    return {**built, "extra": extra}
