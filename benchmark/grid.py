"""A validated config expanded into what the workflow trains: cells, their identity, their packs.

A cell is (dataset, method label, samples per class, split, seed): `split` draws the training subset,
`seed` the initialisation, batch order and augmentation, so tables can show the variance of both. Its
result is identified by those coordinates AND everything that can change it:

- its settings: every result-determining setting, resolved (the learning rate of its method, the
  device kind and precision it computes in, its method's and model's classes, ...), hashed into the
  settings key, which is part of its folder:
      results/cells/<dataset>/<method>/spc<n>/<key>/split<k>/seed<s>/metrics.json
  Two grids that differ in any of these settings never share a folder; two that agree share it and
  the cell is trained once. `settings.json` beside the split folders says what the key stands for.
- its data: the prepared dataset's hash (the data receipt data/prepared/<dataset>.json);
- its code: the package modules it imports (benchmark/code.py).
The record (metrics.json) states all three; a record that does not match what the grid asks for is
not used (benchmark/records.py).

Settings that cannot change a result (the device index, threads, cells_per_gpu, seeds_per_job,
eval_batch_size, the tracking store) are not in the key, so changing them reruns nothing.

Cells of one (dataset, method, spc, key) are trained `seeds_per_job` at a time by one job, a pack; the
job's output is the pack's marker file beside the cells, written when every cell of the pack has its
record. The cells themselves are not outputs of the job, so Snakemake never deletes a finished result.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from benchmark.config import ConfigError, base_method, dataset_spc, method_labels, method_settings, train_settings
from benchmark.device import cpu_has_native_bf16, cuda_present
from benchmark.registry import METHODS, MODELS, split_label

KEY_LENGTH = 10  # hex digits of the settings key: 40 bits, no collision among millions of configurations


def runs(config: dict) -> list[tuple[int, int]]:
    """Every (split, seed) of the grid, in table order."""
    return [(split, seed) for split in config["splits"] for seed in config["seeds"]]


def device_kind(device: str) -> str:
    """cpu or cuda: what `device` resolves to here (auto: cuda when this machine has an NVIDIA GPU)."""
    if device == "auto":
        return "cuda" if cuda_present() else "cpu"
    return device.split(":")[0]


def resolved_precision(precision: str, kind: str) -> str:
    """fp32 or bf16: `auto` is bf16 where the hardware computes it natively (every supported GPU; CPUs with
    AVX512-BF16 or AMX), fp32 elsewhere."""
    if precision != "auto":
        return precision
    return "bf16" if kind == "cuda" or cpu_has_native_bf16() else "fp32"


def embeddings_path(dataset: str, hierarchy: str) -> str:
    """The cached class embeddings of `hierarchy` for `dataset` (written by the class_embeddings rule)."""
    return f"results/embeddings/{dataset}/{hierarchy}.npy"


def cell_settings(config: dict, dataset: str, label: str, _chain: tuple = ()) -> dict:
    """Everything a cell's result depends on besides its coordinates, its data and its code.

    A method whose settings name a `teacher` (a method label of the same dataset) gets the teacher's
    settings and key under "teacher": the student's identity includes its teacher's.
    """
    ds = config["dataset_settings"][dataset]
    name, hierarchy = split_label(label)
    kind = device_kind(config["device"])
    settings = {
        "method_target": METHODS[base_method(config, name)],
        "method": method_settings(config, name),
        "model": ds["model"],
        "model_target": MODELS[ds["model"]],
        "augment": ds["augment"],
        "train": train_settings(config, dataset, label),
        "device": kind,
        "precision": resolved_precision(config["precision"], kind),
        "compile": config["compile"],
        "deterministic": config["deterministic"],
    }
    teacher = settings["method"].get("teacher")
    if teacher is not None:
        if teacher in (*_chain, label):
            raise ConfigError(f"config error at 'method_settings': the teachers of {label!r} form a cycle "
                              f"({' -> '.join((*_chain, label, teacher))})")
        teacher_settings = cell_settings(config, dataset, teacher, (*_chain, label))
        settings["teacher"] = {"label": teacher, "key": settings_key(teacher_settings), "settings": teacher_settings}
    extra = []
    if hierarchy is not None:
        settings["hierarchy"] = hierarchy
        settings["embeddings"] = embeddings_path(dataset, hierarchy)
        extra.append(EMBEDDINGS)
    if recipe_on(settings["train"]["recipe"]):
        settings["recipe_target"] = RECIPE
        extra.append(RECIPE)
    if extra:
        settings["extra_targets"] = extra  # modules the cell imports by name (benchmark/code.py)
    return settings


RECIPE = "benchmark.recipe.pipeline:Recipe"
EMBEDDINGS = "benchmark.hierarchy:load_embeddings"  # = benchmark.methods.EMBEDDINGS (not imported: torch)


def recipe_on(recipe: dict) -> bool:
    return bool(recipe["trivial_augment"] or recipe["erase"]["p"] > 0 or recipe["mixup"]["alpha"] > 0
                or recipe["cutmix"]["p"] > 0 or recipe["ema"]["decay"] > 0)


def settings_key(settings: dict) -> str:
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:KEY_LENGTH]


def spc_name(spc) -> str:
    return f"spc{spc}"


@dataclass(frozen=True)
class Configuration:
    """One (dataset, method label, samples per class) with its settings: the cells of all its runs."""

    dataset: str
    method: str
    spc: int | str
    settings: dict
    key: str

    @property
    def folder(self) -> str:
        return f"results/cells/{self.dataset}/{self.method}/{spc_name(self.spc)}/{self.key}"

    def cell_dir(self, split: int, seed: int) -> str:
        return f"{self.folder}/split{split}/seed{seed}"

    def record(self, split: int, seed: int) -> str:
        return f"{self.cell_dir(split, seed)}/metrics.json"

    def coordinates(self, split: int, seed: int) -> dict:
        return {"dataset": self.dataset, "method": self.method, "samples_per_class": self.spc, "split": split,
                "seed": seed}


def runs_name(cell_runs) -> str:
    """A pack's runs as a file name: split0_seed0-1-2, or split0_seed2+split1_seed0-1 across splits."""
    by_split: dict[int, list[int]] = {}
    for split, seed in cell_runs:
        by_split.setdefault(split, []).append(seed)
    return "+".join(f"split{split}_seed{'-'.join(map(str, seeds))}" for split, seeds in by_split.items())


def parse_runs(name: str) -> list[tuple[int, int]]:
    out = []
    for part in name.split("+"):
        split, _, seeds = part.removeprefix("split").partition("_seed")
        out += [(int(split), int(seed)) for seed in seeds.split("-")]
    return out


@dataclass(frozen=True)
class Pack:
    """The cells one training job trains: `runs` of one configuration, one after the other.

    A student's pack depends on its teacher's pack of the same runs (a DAG edge); a teacher's pack saves
    its cells' final weights (`save_weights`).
    """

    configuration: Configuration
    runs: tuple[tuple[int, int], ...]
    teacher: Configuration | None = None
    save_weights: bool = False

    @property
    def teacher_marker(self) -> str | None:
        return None if self.teacher is None else f"{self.teacher.folder}/{self.name}.pack"

    @property
    def name(self) -> str:
        return runs_name(self.runs)

    @property
    def marker(self) -> str:
        return f"{self.configuration.folder}/{self.name}.pack"

    @property
    def log(self) -> str:
        return f"{self.configuration.folder}/{self.name}.log"

    @property
    def records(self) -> list[str]:
        return [self.configuration.record(split, seed) for split, seed in self.runs]

    def spec(self) -> dict:
        """What the train verb gets: everything that determines the pack's results (a Snakemake param)."""
        c = self.configuration
        spec = {"dataset": c.dataset, "method": c.method, "spc": c.spc, "key": c.key, "settings": c.settings,
                "runs": [list(r) for r in self.runs], "folder": c.folder, "data": f"data/prepared/{c.dataset}",
                "save_weights": self.save_weights}
        if self.teacher is not None:
            spec["teacher_folder"] = self.teacher.folder
        return spec


class Grid:
    """A validated config's configurations and packs, computed once (the Snakefile asks many times)."""

    def __init__(self, config: dict) -> None:
        self.config = config
        self.runs = runs(config)
        self.configurations: list[Configuration] = []  # the tables' cells, in table order
        self.teachers: list[Configuration] = []  # teachers that are not table rows themselves
        seen: dict[str, Configuration] = {}
        for dataset in config["datasets"]:
            for label in method_labels(config, dataset):
                settings = cell_settings(config, dataset, label)
                for spc in dataset_spc(config, dataset):
                    c = Configuration(dataset, label, spc, settings, settings_key(settings))
                    self.configurations.append(c)
                    seen[c.folder] = c
        todo = list(self.configurations)
        while todo:  # the teachers of the students, and theirs
            c = todo.pop()
            teacher = c.settings.get("teacher")
            if teacher is None:
                continue
            t = Configuration(c.dataset, teacher["label"], c.spc, teacher["settings"], teacher["key"])
            if t.folder not in seen:
                seen[t.folder] = t
                self.teachers.append(t)
                todo.append(t)
        everything = [*self.configurations, *self.teachers]
        teacher_of = {c.folder: self._teacher_of(c, seen) for c in everything}
        taught = {t.folder for t in teacher_of.values() if t is not None}
        size = config["seeds_per_job"]
        self.packs = [Pack(c, tuple(self.runs[i:i + size]), teacher_of[c.folder], c.folder in taught)
                      for c in everything for i in range(0, len(self.runs), size)]
        self.by_marker = {p.marker: p for p in self.packs}

    @staticmethod
    def _teacher_of(c: Configuration, seen: dict) -> Configuration | None:
        teacher = c.settings.get("teacher")
        if teacher is None:
            return None
        return seen[Configuration(c.dataset, teacher["label"], c.spc, teacher["settings"], teacher["key"]).folder]

    def pack(self, wildcards) -> Pack:
        """The pack of a train job's wildcards (dataset, method, spc, key, runs)."""
        marker = (f"results/cells/{wildcards.dataset}/{wildcards.method}/spc{wildcards.spc}/{wildcards.key}/"
                  f"{wildcards.runs}.pack")
        try:
            return self.by_marker[marker]
        except KeyError:
            raise ConfigError(f"{marker} is not a pack of grid {self.config['grid']!r}; ask for the grid's "
                              "targets (snakemake with no target) or a pack the grid has") from None

    def cells(self):
        """(configuration, split, seed) of every cell, in table order."""
        return [(c, split, seed) for c in self.configurations for split, seed in self.runs]

    @functools.cached_property
    def markers(self) -> list[str]:
        return [p.marker for p in self.packs]


def table_config(config: dict) -> dict:
    """The config without the settings that cannot change a table (a Snakemake param of the aggregate:
    changing threads or packing must not rerun it)."""
    out = copy.deepcopy(config)
    for key in ("device", "threads", "seeds_per_job", "cells_per_gpu", "eval_batch_size"):
        out.pop(key, None)
    return out


def remove_stale_markers(grid: Grid, root: Path = Path(".")) -> list[str]:
    """Delete the marker of every pack with a cell whose record is missing, so that its job runs again.

    A marker says "every cell of this pack has its record"; a record deleted afterwards (by hand, or a
    cell set aside) would otherwise never be retrained, since nothing downstream needs the marker
    rewritten. Returns the cells found missing. Runs while the DAG is built, before any job.
    """
    missing = []
    for pack in grid.packs:
        marker = root / pack.marker
        if not marker.exists():
            continue
        gone = [record for record in pack.records if not (root / record).exists()]
        if gone:
            marker.unlink()
            missing += gone
    return missing
