"""python -m perf [--parts a,b] [--out results/perf] [--quick] [--set part.key=value ...]  (from the repository root)

Runs each named part, writes <out>/<part>.json (with the machine it ran on), then rebuilds
<out>/summary.md from every *.json in <out>. A part that fails prints one line, leaves its error in
its JSON and makes the exit status 1; the other parts still run.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from importlib import metadata
from pathlib import Path

from benchmark.io import write_json
from perf import PARTS
from perf.repo_copy import REPO

DEFAULT_PARTS = [p for p in PARTS if p != "default_grid"]  # the default grid takes minutes: only when named


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit() -> str | None:
    """HEAD of the repository, with -dirty when tracked files differ; None outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def machine() -> dict:
    try:
        torch = metadata.version("torch")  # without importing torch (seconds)
    except metadata.PackageNotFoundError:
        torch = None
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "torch": torch, "python": platform.python_version(),
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"), "git_commit": git_commit(),
            "host": platform.node(), "load_average_1min": os.getloadavg()[0]}  # other work skews the timings


def one_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def run_part(name: str, out: Path, quick: bool, options: dict) -> bool:
    """Run one part and write <out>/<name>.json; return whether it succeeded (one stderr line if not)."""
    record = {"part": name, "quick": quick, "options": options, "machine": machine()}
    start = time.perf_counter()
    try:
        result = importlib.import_module(PARTS[name]).run(quick, **options)
        record["result"] = result
    except Exception as error:  # any failure of a part: reported, and the other parts still run
        record["error"] = one_line(error)
        record["traceback"] = traceback.format_exc()
        print(f"perf: part {name} failed: {record['error']}", file=sys.stderr, flush=True)
    record["elapsed_s"] = time.perf_counter() - start
    write_json(out / f"{name}.json", record)
    if "error" not in record:
        print(f"perf: {name} done in {record['elapsed_s']:.1f} s -> {out / f'{name}.json'}", flush=True)
    return "error" not in record


def parse_parts(text: str) -> list[str]:
    names = [p.strip() for p in text.split(",") if p.strip()]
    unknown = [p for p in names if p not in PARTS]
    if unknown:
        raise SystemExit(f"perf: unknown part {unknown[0]!r}; known parts: {', '.join(PARTS)}")
    return names


def parse_options(values: list[str], parts: list[str]) -> dict[str, dict]:
    """`part.key=value` (value as JSON, else a string) -> {part: {key: value}}."""
    options: dict[str, dict] = {}
    for item in values:
        target, sep, raw = item.partition("=")
        part, dot, key = target.partition(".")
        if not sep or not dot or part not in PARTS:
            raise SystemExit(f"perf: --set {item!r}: expected part.key=value with a part from {', '.join(PARTS)}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        options.setdefault(part, {})[key] = value
    return {p: options.get(p, {}) for p in parts}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m perf", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default=",".join(DEFAULT_PARTS),
                        help=f"comma-separated, from {', '.join(PARTS)} (default: all but default_grid)")
    parser.add_argument("--out", default="results/perf", help="folder of <part>.json and summary.md")
    parser.add_argument("--quick", action="store_true", help="smaller grids and fewer repeats")
    parser.add_argument("--set", action="append", default=[], metavar="PART.KEY=VALUE",
                        help="a keyword argument of a part's run(), e.g. dag.seeds=2 (value as JSON)")
    args = parser.parse_args(argv)
    parts = parse_parts(args.parts)
    options = parse_options(args.set, parts)
    out = Path(args.out)
    ok = [run_part(name, out, args.quick, options[name]) for name in parts]
    summarise(out)
    return 0 if all(ok) else 1


def summarise(out: Path) -> None:
    """Rebuild <out>/summary.md; where pandas or tabulate is missing (a bare GPU machine) say so in one line."""
    try:
        from perf.report import write_summary

        summary = write_summary(out)
    except ImportError as error:
        print(f"perf: summary.md not written ({one_line(error)}); the JSON files are complete", file=sys.stderr)
        return
    print(f"perf: summary of {len(list(out.glob('*.json')))} result files -> {summary}")


if __name__ == "__main__":
    sys.exit(main())
