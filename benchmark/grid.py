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

from benchmark import yamlfile
from benchmark.config import (
    ConfigError,
    base_method,
    dataset_spc,
    method_labels,
    method_settings,
    selected_file,
    train_settings,
)
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
    if config["imbalance"]["factor"] > 1:  # only then: balanced grids keep their keys
        settings["imbalance"] = dict(config["imbalance"])
    extra = []
    teacher = settings["method"].get("teacher")
    if teacher is not None:
        if teacher in (*_chain, label):
            raise ConfigError(f"config error at 'method_settings': the teachers of {label!r} form a cycle "
                              f"({' -> '.join((*_chain, label, teacher))})")
        if base_method(config, split_label(teacher)[0]) not in METHODS:
            raise ConfigError(f"config error at 'method_settings': the teacher {teacher!r} of {label!r} is neither a "
                              "registered method nor a variant; name one (e.g. softmax_ce) or add the variant")
        teacher_settings = cell_settings(config, dataset, teacher, (*_chain, label))
        settings["teacher"] = {"label": teacher, "key": settings_key(teacher_settings), "settings": teacher_settings}
        # The student runs the teacher's code too (benchmark/methods/teacher.py rebuilds it by name): editing
        # the teacher's method reruns the student.
        extra += [teacher_settings["method_target"], teacher_settings["model_target"],
                  *teacher_settings.get("extra_targets", [])]
    if hierarchy is not None:
        settings["hierarchy"] = hierarchy
        settings["embeddings"] = embeddings_path(dataset, hierarchy)
        extra.append(EMBEDDINGS)
    if recipe_on(settings["train"]["recipe"]):
        settings["recipe_target"] = RECIPE
        extra.append(RECIPE)
    extra = [t for t in dict.fromkeys(extra) if t not in (settings["method_target"], settings["model_target"])]
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
    """One (dataset, method label, samples per class) with its settings: the cells of all its runs.

    kind "cell" (a grid's result: results/cells/) or "trial" (a tuning trial: results/trials/).
    """

    dataset: str
    method: str
    spc: int | str
    settings: dict
    key: str
    kind: str = "cell"

    @property
    def folder(self) -> str:
        root = "results/trials" if self.kind == "trial" else "results/cells"
        return f"{root}/{self.dataset}/{self.method}/{spc_name(self.spc)}/{self.key}"

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
    selection: str | None = None  # the tuned values the cells train with (selection.json), tuned grids
    row: bool = True  # False: a teacher that is not a table row (its cells are tagged role: teacher)

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
        if self.selection is not None:
            spec["selection"] = self.selection
        if not self.row:
            spec["role"] = "teacher"
        return spec


@dataclass(frozen=True)
class Tuning:
    """The search of one (dataset, method, spc) of a tuned grid: its trials and where its selection goes."""

    configuration: Configuration  # the final cells' configuration
    points: list[dict]
    trials: list[Configuration]  # one per point, in the points' order
    runs: tuple[tuple[int, int], ...]  # (split, trial seed)

    @property
    def folder(self) -> str:
        c = self.configuration
        return f"results/tuning/{c.dataset}/{c.method}/{spc_name(c.spc)}/{c.key}"

    @property
    def selection(self) -> str:
        return f"{self.folder}/selection.json"

    @property
    def table(self) -> str:
        return f"{self.folder}/trials.csv"


def load_selected(config: dict) -> dict:
    """The `selected` file's values: {dataset: {method label: {spc (str): {lr, weight_decay, ...}}}} ({} without)."""
    path = selected_file(config)
    if path is None:
        return {}
    data = yamlfile.read(path) or {}
    return {d: {m: {str(k): v for k, v in per_spc.items()} for m, per_spc in methods.items()}
            for d, methods in data.get("values", {}).items()}


def selected_for(chosen: dict, config: dict, dataset: str, label: str, spc) -> dict | None:
    """One cell's values in `chosen` (load_selected): its method label's, else its base method's (a variant
    without a selection of its own takes its method's); None where the file has none."""
    per_method = chosen.get(dataset, {})
    return (per_method.get(label) or per_method.get(base_method(config, split_label(label)[0])) or {}).get(str(spc))


def tuned_settings(settings: dict, tune: dict) -> dict:
    """The final cells' settings under the tuned protocol: the searched values come from the selection, so
    they are "tuned" here, and the search itself (space, budget, seeds, ...) is part of the identity."""
    out = copy.deepcopy(settings)
    for name in tune["space"]:
        if name == "weight_decay":
            out["train"]["optimizer"]["weight_decay"] = "tuned"
        else:
            out["train"][name] = "tuned"
    out["tuned"] = tune
    return out


def trial_settings(settings: dict, tune: dict, point: dict) -> dict:
    """A trial's settings: the cell's with the point's values, validated on a split carved from the subset."""
    from benchmark.tuning import apply_point

    out = copy.deepcopy(settings)
    train = apply_point(out["train"], point)
    train.update(validation_fraction=tune["validation_fraction"], validation_split=tune["validation"],
                 select="last", patience=0)
    if "epochs" not in point and tune.get("epochs"):
        train["epochs"] = tune["epochs"]
    out["train"] = train
    out["trial"] = {"objective_epochs": tune["objective_epochs"]}
    return out


class Grid:
    """A validated config's configurations and packs, computed once (the Snakefile asks many times)."""

    def __init__(self, config: dict) -> None:
        from benchmark.tuning import points

        self.config = config
        self.runs = runs(config)
        self.configurations: list[Configuration] = []  # the tables' cells, in table order
        self.teachers: list[Configuration] = []  # teachers that are not table rows themselves
        self.tunings: list[Tuning] = []
        tune = config.get("tune")
        trial_runs = tuple((split, seed) for split in config["splits"] for seed in tune["seeds"]) if tune else ()
        seen: dict[str, Configuration] = {}
        chosen = load_selected(config)
        for dataset in config["datasets"]:
            for label in method_labels(config, dataset):
                base = cell_settings(config, dataset, label)
                for spc in dataset_spc(config, dataset):
                    values = selected_for(chosen, config, dataset, label, spc)
                    own = base
                    if values is not None:  # values a tuned grid selected (config key `selected`)
                        from benchmark.tuning import apply_point

                        own = {**base, "train": apply_point(base["train"], values)}
                    elif own["train"]["lr"] is None and not tune:
                        raise ConfigError(f"config error at 'selected': {selected_file(config)} has no learning rate "
                                          f"for {label} on {dataset} at {spc} per class; set train.lr for it, or "
                                          "select it (the command in the file's header)")
                    settings = tuned_settings(own, tune) if tune else own
                    c = Configuration(dataset, label, spc, settings, settings_key(settings))
                    self.configurations.append(c)
                    seen[c.folder] = c
                    if tune:
                        point_list = points(tune["space"])
                        trials = []
                        for point in point_list:
                            t_settings = trial_settings(own, tune, point)
                            trials.append(Configuration(dataset, label, spc, t_settings, settings_key(t_settings),
                                                        "trial"))
                        self.tunings.append(Tuning(c, point_list, trials, trial_runs))
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
        students = sorted({c.method for c in self.configurations if "teacher" in c.settings})
        if tune and students:
            raise ConfigError(f"config error at 'tune': the tuned protocol does not train teachers for its trials "
                              f"yet; leave the methods with a teacher ({', '.join(students)}) out of a tuned grid, "
                              "or run them in a grid without `tune`")
        everything = [*self.configurations, *self.teachers]
        teacher_of = {c.folder: self._teacher_of(c, seen) for c in everything}
        taught = {t.folder for t in teacher_of.values() if t is not None}
        selection = {t.configuration.folder: t.selection for t in self.tunings}
        size = config["seeds_per_job"]
        rows = {c.folder for c in self.configurations}
        self.packs = [Pack(c, tuple(self.runs[i:i + size]), teacher_of[c.folder], c.folder in taught,
                           selection.get(c.folder), c.folder in rows)
                      for c in everything for i in range(0, len(self.runs), size)]
        self.trial_markers: dict[str, list[str]] = {}
        if tune and tune["strategy"] == "grid":  # every trial an ordinary pack
            for t in self.tunings:
                trial_packs = [Pack(trial, trial_runs[i:i + size]) for trial in t.trials
                               for i in range(0, len(trial_runs), size)]
                self.trial_markers[t.selection] = [p.marker for p in trial_packs]
                self.packs += trial_packs
        self.by_marker = {p.marker: p for p in self.packs}
        self.by_selection = {t.selection: t for t in self.tunings}

    @staticmethod
    def _teacher_of(c: Configuration, seen: dict) -> Configuration | None:
        teacher = c.settings.get("teacher")
        if teacher is None:
            return None
        return seen[Configuration(c.dataset, teacher["label"], c.spc, teacher["settings"], teacher["key"]).folder]

    def pack(self, wildcards) -> Pack:
        """The pack of a train job's wildcards (root, dataset, method, spc, key, runs)."""
        marker = (f"results/{wildcards.root}/{wildcards.dataset}/{wildcards.method}/spc{wildcards.spc}/"
                  f"{wildcards.key}/{wildcards.runs}.pack")
        try:
            return self.by_marker[marker]
        except KeyError:
            raise ConfigError(f"{marker} is not a pack of grid {self.config['grid']!r}; ask for the grid's "
                              "targets (snakemake with no target) or a pack the grid has") from None

    def cells(self):
        """(configuration, split, seed) of every cell, in table order."""
        return [(c, split, seed) for c in self.configurations for split, seed in self.runs]

    def tuning(self, wildcards) -> Tuning:
        """The tuning of a select/tune job's wildcards (dataset, method, spc, key)."""
        w = wildcards
        return self.by_selection[f"results/tuning/{w.dataset}/{w.method}/spc{w.spc}/{w.key}/selection.json"]

    @functools.cached_property
    def markers(self) -> list[str]:
        """The markers of the packs of the grid's cells (and their teachers): what `all` asks for."""
        return [p.marker for p in self.packs if p.configuration.kind == "cell"]


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
