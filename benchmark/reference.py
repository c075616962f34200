"""Published accuracies to put beside ours in the tables (config key `reference`).

A reference file (config/reference/*.yaml) holds one published table:

    source: <citation: paper, table, where the numbers were read>
    metric: test_accuracy              # the metric the numbers are, in percent
    samples_per_class: all             # the training-set size they were obtained with
    values:                            # loss label -> dataset -> accuracy (%)
      softmax_ce: {cub: 51.9, cars: 78.2}
      cosine_semantic-cub_balanced: {cub: 59.6}

Loss labels are the grid's (see benchmark/config.py); a label or dataset the grid does not run
is simply not shown.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from benchmark import yamlfile
from benchmark.registry import METHODS, split_label

METRICS = ("test_accuracy", "test_balanced_accuracy")


class ReferenceFileError(ValueError):
    """A reference file that is missing or malformed; the message names the file and the entry."""


def load_reference(path: Path) -> dict:
    """Read and check a reference file; ReferenceFileError (one line) on any problem."""
    path = Path(path)
    if not path.is_file():
        raise ReferenceFileError(f"reference file {path} does not exist; give a path relative to the repository root")
    try:
        data = yamlfile.read(path)
    except yaml.YAMLError as error:
        raise ReferenceFileError(f"reference file {path} is not valid YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(data, dict) or not {"source", "metric", "samples_per_class", "values"} <= set(data):
        raise ReferenceFileError(f"reference file {path} needs the keys source, metric, samples_per_class and values")
    if data["metric"] not in METRICS:
        raise ReferenceFileError(f"reference file {path}: metric {data['metric']!r} is unknown; use one of {METRICS}")
    values = data["values"]
    if not isinstance(values, dict):
        raise ReferenceFileError(f"reference file {path}: values must map loss labels to {{dataset: accuracy}}")
    for label, row in values.items():
        if split_label(str(label))[0] not in METHODS:
            raise ReferenceFileError(f"reference file {path}: {label!r} does not name a registered loss")
        if not isinstance(row, dict):
            raise ReferenceFileError(f"reference file {path}: {label} must map datasets to accuracies")
        for dataset, value in row.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
                raise ReferenceFileError(
                    f"reference file {path}: {label}.{dataset} is {value!r}; expected a percentage in [0, 100]"
                )
    data["samples_per_class"] = str(data["samples_per_class"])
    return data
