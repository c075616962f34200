"""Teachers in the DAG, through real Snakemake in a temporary copy of the repository (tiny grid: one cell of
3 steps per method): the students wait for their teachers, a teacher shared by three students is
trained once, editing the teacher's loss reruns teacher and students, editing the students' method
reruns only them, and a teacher retrained to the same weights leaves its students' results alone.
About 50 s on 2 CPU cores (each job is a process that imports torch)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import jobs, records, snakemake, write_config

pytestmark = pytest.mark.slow

GRID = {"grid": "teachers", "methods": ["kd", "rkd", "sd_g2"], "samples_per_class": [5], "seeds": [0],
        "seeds_per_job": 1, "tracking": False,
        "variants": {"sd_g1": {"method": "kd", "settings": {"alpha": 0.5, "temperature": 1.0}},
                     "sd_g2": {"method": "kd", "settings": {"alpha": 0.5, "temperature": 1.0, "teacher": "sd_g1"}}}}
STUDENTS = ["kd", "rkd", "sd_g1", "sd_g2"]


def grid_config(repo: Path) -> Path:
    path = write_config(repo, "teachers", epochs=1, **GRID)
    data = yaml.safe_load(path.read_text())
    data["train"]["steps_per_epoch"] = 3
    data["dataset_settings"]["digits"]["train"]["lr"]["default"] = 0.05
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def train_jobs(repo: Path, config: Path) -> dict[str, tuple[str, str]]:
    """{method: (its pack's marker, the reason line)} of every train job a dry run schedules."""
    result = snakemake(repo, "-n", "--quiet", "host", "--configfile", str(config))
    out, blocks = {}, (result.stdout + result.stderr).split("rule ")
    for block in blocks:
        if not block.startswith("train:"):
            continue
        fields = dict(line.strip().split(": ", 1) for line in block.splitlines()[1:] if ": " in line)
        method = dict(kv.split("=") for kv in fields["wildcards"].split(", "))["method"]
        assert method not in out, f"{method} is trained by two jobs"
        out[method] = (fields["output"], fields["reason"])
    return out


def changed(before: dict, after: dict) -> list[str]:
    """The methods whose record was rewritten."""
    return sorted(path.split("/")[3] for path in after if after[path] != before.get(path))


def test_students_wait_for_teachers_and_rerun_with_them(repo: Path) -> None:
    config = grid_config(repo)
    scheduled = train_jobs(repo, config)
    assert sorted(scheduled) == ["kd", "rkd", "sd_g1", "sd_g2", "softmax_ce"]  # the shared teacher once
    waits = {method: reason.partition("Input files updated by another job: ")[2].split(", ")
             for method, (_, reason) in scheduled.items()}
    teacher, generation_1 = scheduled["softmax_ce"][0], scheduled["sd_g1"][0]
    assert all(teacher in waits[student] for student in ("kd", "rkd", "sd_g1"))
    assert generation_1 in waits["sd_g2"] and teacher not in waits["sd_g2"]  # generation 2 waits for 1
    assert waits["softmax_ce"] == [""]  # the teacher waits for nothing (the data is prepared)

    snakemake(repo, "--cores", "2", "--configfile", str(config))
    first = records(repo)
    assert sorted(p.split("/")[3] for p in first) == ["kd", "rkd", "sd_g1", "sd_g2", "softmax_ce"]
    cells = repo / "results/cells/digits"
    weights = sorted(p.relative_to(cells).parts[0] for p in cells.rglob("weights.pt"))
    assert weights == ["sd_g1", "softmax_ce"]  # only teachers save their weights
    described = json.loads(next((cells / "softmax_ce/spc5").glob("*/settings.json")).read_text())
    assert described["role"] == "teacher"  # not a row of this grid's table
    kd = json.loads(next((cells / "kd/spc5").rglob("metrics.json")).read_text())
    assert kd["settings"]["teacher"]["label"] == "softmax_ce" and len(kd["identity"]["teacher"]) == 16
    table = (repo / "results/tables/teachers.md").read_text()
    assert "| kd" in table and "sd_g2" in table and "softmax_ce" not in table.split("Entries")[0]
    assert jobs(snakemake(repo, "-n", "--configfile", str(config)).stdout) == 0

    # Editing the teacher's loss reruns the teacher and every student (the chain too): the students' code
    # includes it (tests/test_longtail_grid.py), so their records would not be used either. Then undone.
    loss = repo / "benchmark/losses/softmax.py"
    original = loss.read_text()
    loss.write_text(original + "\n# edited by the test\n")
    assert sorted(train_jobs(repo, config)) == ["kd", "rkd", "sd_g1", "sd_g2", "softmax_ce"]
    loss.write_text(original)
    assert jobs(snakemake(repo, "-n", "--configfile", str(config)).stdout) == 0
    second = first

    # Editing the students' method reruns only the students.
    method = repo / "benchmark/methods/distill.py"
    method.write_text(method.read_text() + "\n# edited by the test\n")
    assert sorted(train_jobs(repo, config)) == STUDENTS
    snakemake(repo, "--cores", "2", "--configfile", str(config))
    third = records(repo)
    assert changed(second, third) == STUDENTS

    # A deleted teacher record is retrained; on the CPU to the same weights, so its students keep theirs.
    victim = next(p for p in third if "/softmax_ce/" in p)
    (repo / victim).unlink()
    snakemake(repo, "--cores", "2", "--configfile", str(config))
    fourth = records(repo)
    assert changed(third, fourth) == ["softmax_ce"]
