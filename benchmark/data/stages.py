"""Which DVC stage writes a path, and which source files it depends on, read from dvc.yaml.

The Snakemake data rules run `dvc repro` on the stage that writes their output and list that
stage's code as their inputs, so that Snakemake reruns a job when DVC would. Reading both from
dvc.yaml keeps one list: a dataset added there (or a dependency added to a stage) needs no change
in the workflow. Only what this project's dvc.yaml uses is understood: plain stages and `foreach`
over a list, with `${item}` in strings.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

DVC_YAML = Path("dvc.yaml")
PARAMS = Path("config/datasets.yaml")


@dataclass(frozen=True)
class Stage:
    name: str  # as `dvc repro` takes it: "prepare_raw@cub"
    code: list[str]  # dependencies no stage writes: the source files
    upstream: list[str]  # dependencies another stage writes (data/raw/cub)
    definition: str  # the stage's entry of dvc.yaml (item substituted) as JSON: changes when it does

    @property
    def prepared(self) -> list[str]:
        """The upstream prepared folders: outputs of the workflow's prepare_dataset rule too."""
        return [path for path in self.upstream if path.startswith("data/prepared/")]


def _read_yaml(path: Path):
    """The parsed YAML file, parsed once per version of the file.

    The data rules ask for a stage 3 or 4 times per job while Snakemake builds the DAG; the cache
    key includes the file's modification time and size, so an edited file is read again.
    """
    stat = Path(path).stat()
    return _parse_yaml(str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=16)
def _parse_yaml(path: str, mtime_ns: int, size: int):  # noqa: ARG001 (mtime and size key the cache)
    from benchmark import yamlfile

    return yamlfile.read(path)


def _path(entry: str | dict) -> str:
    """A deps/outs entry is a path, or a one-key mapping {path: options}."""
    return entry if isinstance(entry, str) else next(iter(entry))


def expand(dvc_yaml: Path = DVC_YAML) -> dict[str, dict]:
    """Every stage by its DVC name ("prepare@digits") -> {"deps": [...], "outs": [...], "definition": ...}."""
    stages = {}
    for group, spec in (_read_yaml(dvc_yaml).get("stages") or {}).items():
        if "foreach" in spec:
            if not isinstance(spec["foreach"], list):
                raise ValueError(f"{dvc_yaml}: stage {group}: only `foreach` over a list is understood here")
            variants = [(f"{group}@{item}", spec["do"], str(item)) for item in spec["foreach"]]
        else:
            variants = [(group, spec, "")]
        for name, body, item in variants:
            body = json.loads(json.dumps(body, sort_keys=True).replace("${item}", item))
            stages[name] = {key: [_path(e) for e in body.get(key) or []] for key in ("deps", "outs")}
            stages[name]["definition"] = json.dumps(body, sort_keys=True)
    return stages


def stage_writing(path: str, dvc_yaml: Path = DVC_YAML) -> Stage:
    """The stage of dvc.yaml with the out `path`; KeyError naming the path when there is none."""
    stages = expand(dvc_yaml)
    written = {out for stage in stages.values() for out in stage["outs"]}
    for name, stage in stages.items():
        if path in stage["outs"]:
            deps = stage["deps"]
            return Stage(name, [d for d in deps if d not in written], [d for d in deps if d in written],
                         stage["definition"])
    raise KeyError(f"no stage of {dvc_yaml} writes {path}; add it there")


# Settings of config/datasets.yaml that say how data is fetched, never what it is: a mirror URL (the
# pinned checksums make it the same file), download workers, where a manually placed file lies.
OPERATIONAL = ("workers", "manual_dir", "url")


def _content(entry):
    if isinstance(entry, dict):
        return {k: _content(v) for k, v in entry.items() if k not in OPERATIONAL}
    return entry


def content_params_json(*keys: str, params: Path = PARAMS) -> str:
    """The entry at `keys` of the params file without its operational settings, as JSON (null when
    absent): the data rule's params, so that editing what one dataset's data IS re-prepares that dataset
    only, and editing how it is fetched re-prepares nothing."""
    entry = _read_yaml(params) or {}
    for key in keys:
        entry = entry.get(key) if isinstance(entry, dict) else None
    return json.dumps(_content(entry), sort_keys=True)
