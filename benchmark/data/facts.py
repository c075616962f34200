"""Published facts of a dataset, checked against what preparation produces."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetFacts:
    classes: int
    train: int
    test: int
    min_train_per_class: int  # the largest samples-per-class value a grid may ask for

    def check(self, name: str, classes: int, train: int, test: int, min_train_per_class: int) -> None:
        got = (classes, train, test, min_train_per_class)
        want = (self.classes, self.train, self.test, self.min_train_per_class)
        if got != want:
            raise ValueError(
                f"dataset {name}: prepared data has classes/train/test/min-per-class {got}, "
                f"the published counts are {want}; the source files are not the expected ones"
            )
