"""Published facts of a dataset, checked against what preparation produces.

The check always runs. A dataset's settings may replace the published counts by an explicit
`expected_counts` entry, meant for mirrors that differ on purpose and for the tiny fixture
archives of the tests; the prepared metadata then records the counts it was checked against.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np


@dataclass(frozen=True)
class DatasetFacts:
    classes: int
    train: int
    test: int
    min_train_per_class: int  # the largest samples-per-class value a grid may ask for

    def check(self, name: str, classes: int, train: int, test: int, min_train_per_class: int,
              source: str = "the published counts") -> None:
        got = (classes, train, test, min_train_per_class)
        want = (self.classes, self.train, self.test, self.min_train_per_class)
        if got != want:
            raise ValueError(
                f"dataset {name}: prepared data has classes/train/test/min-per-class {got}, "
                f"{source} are {want}; the source files are not the expected ones"
            )


def counts(labels: np.ndarray, train_idx: np.ndarray, test_idx: np.ndarray, num_classes: int) -> dict[str, int]:
    """The quantities DatasetFacts describes, measured on built arrays."""
    per_class = np.bincount(labels[train_idx], minlength=num_classes)
    return {"classes": num_classes, "train": int(train_idx.size), "test": int(test_idx.size),
            "min_train_per_class": int(per_class.min()) if num_classes else 0}


def expected_facts(name: str, published: DatasetFacts, settings: dict) -> tuple[DatasetFacts, str]:
    """The counts to check against and how to name them: `expected_counts` if set, else `published`."""
    override = settings.get("expected_counts")
    if override is None:
        return published, "the published counts"
    keys = [f.name for f in fields(DatasetFacts)]
    if not isinstance(override, dict) or sorted(override) != sorted(keys) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in override.values()):
        raise ValueError(f"dataset {name}: expected_counts must give the integers {', '.join(keys)}; "
                         f"got {override!r}")
    return DatasetFacts(**override), "the expected_counts of its settings"
