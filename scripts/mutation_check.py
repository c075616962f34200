"""The test of the tests: break the trainer in realistic ways and check that the fast suite notices.

Each mutation below is one small edit of the kind a real bug makes (labels of other images, predictions
from the wrong end of the scores, an optimiser that never steps, the test set used for selection, a
loss's sign, a result written for another cell, ...). For each, the working tree is copied to a temporary
git repository (perf.repo_copy.copy_repo: the files git sees, no results or data), the edit is applied,
and the fast suite runs there (`pytest -m "not slow" -x -q`, the modules most likely to catch a trainer
bug first). A mutation is caught when that run fails; the table says by which test. The unmutated copy
must pass first (the baseline), or every "caught" would mean nothing.

    python scripts/mutation_check.py                   # baseline + every mutation, one after the other
    python scripts/mutation_check.py --jobs 2          # two copies at a time (a 2-core machine)
    python scripts/mutation_check.py --only labels-misaligned --no-baseline
    python scripts/mutation_check.py --list
    python scripts/mutation_check.py --ignore tests/test_x.py   # leave a module out (passed to pytest)

Exit status: 0 when every mutation is caught, 1 when one survives, 2 when the baseline fails or a mutation
no longer applies (its code changed: update the mutation here; tests/test_mutation_check.py checks that
every one applies, so the fast suite says so first).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Run first: these catch a broken trainer within seconds; the rest of the suite follows, module by module.
FIRST = ["tests/test_protocol.py", "tests/test_learning.py", "tests/test_losses.py"]
# In a mutant its own test fails by design (the mutated text is gone): it is the baseline's to run.
MUTANT_IGNORES = ["tests/test_mutation_check.py"]


@dataclass(frozen=True)
class Mutation:
    name: str
    what: str
    path: str
    old: str  # must occur exactly once in `path`
    new: str


MUTATIONS = [
    Mutation("labels-misaligned", "each training batch gets the labels of other images",
             "benchmark/train/data.py", "y = self.labels[idx]", "y = self.labels[idx.roll(1)]"),
    Mutation("test-labels-misaligned", "the test predictions are scored against other images' labels",
             "benchmark/train/record.py", "target = run.prepared.labels[test_idx]",
             "target = run.prepared.labels[test_idx[::-1]]"),
    Mutation("predictions-inverted", "the predicted class is the lowest score",
             "benchmark/evaluate.py", "method.scores(x).argmax(dim=1)", "method.scores(x).argmin(dim=1)"),
    Mutation("optimiser-not-stepping", "gradients are cleared after backward, before the step",
             "benchmark/train/loop.py", "    run.optimizer.zero_grad()\n    value.backward()\n",
             "    value.backward()\n    run.optimizer.zero_grad()\n"),
    Mutation("test-set-for-selection", "validation (best epoch, early stopping) is computed on the test set",
             "benchmark/train/loop.py",
             "return accuracy(predict_images(run, run.val_idx), run.prepared.labels[run.val_idx])",
             "return accuracy(predict_images(run, run.prepared.test_idx), run.prepared.labels[run.prepared.test_idx])"),
    Mutation("softmax-sign-flipped", "the cross-entropy loss is negated",
             "benchmark/losses/softmax.py", "return F.cross_entropy(output.float(), target)",
             "return -F.cross_entropy(output.float(), target)"),
    Mutation("cosine-sign-flipped", "the cosine loss rewards pointing away from the class embedding",
             "benchmark/losses/cosine.py", "return (1.0 - (embedded * self.class_embeddings[target])",
             "return (1.0 + (embedded * self.class_embeddings[target])"),
    Mutation("augmentation-moves-images", "the random flip reverses the batch instead of the image's columns",
             "benchmark/augment.py", "torch.where(flip[:, None, None, None], x.flip(3), x)",
             "torch.where(flip[:, None, None, None], x.flip(0), x)"),
    Mutation("validation-in-training", "the validation images are also trained on",
             "benchmark/validation.py", "train.append(order[k:])", "train.append(order)"),
    Mutation("subset-by-seed", "the training subset is drawn by the init seed instead of the split",
             "benchmark/train/build.py", "cell.samples_per_class, cell.dataset, cell.split)",
             "cell.samples_per_class, cell.dataset, cell.seed)"),
    Mutation("record-in-another-cells-folder", "a pack writes a cell's record into the folder of another seed",
             "benchmark/packs.py", 'return self.folder / f"split{split}" / f"seed{seed}"',
             'return self.folder / f"split{split}" / f"seed{split}"'),
    Mutation("another-cell-trained", "a pack trains (split, seed) swapped under the cell's coordinates",
             "benchmark/packs.py", 'self.spec["spc"], split, seed)', 'self.spec["spc"], seed, split)'),
]


class MutationError(RuntimeError):
    """A mutation that no longer applies: the code it edits changed."""


def check_applies(mutation: Mutation, root: Path) -> str:
    """The text of the file to mutate; MutationError unless `old` occurs exactly once in it."""
    text = (root / mutation.path).read_text()
    count = text.count(mutation.old)
    if count != 1:
        raise MutationError(f"mutation {mutation.name}: {mutation.path} has {count} occurrences of {mutation.old!r}, "
                            "expected 1; update it in scripts/mutation_check.py")
    return text


def apply(mutation: Mutation, root: Path) -> None:
    text = check_applies(mutation, root)
    (root / mutation.path).write_text(text.replace(mutation.old, mutation.new))


def first_failure(output: str) -> str:
    """The first failing test of a pytest run's short summary (-ra), or what stopped the run."""
    match = re.search(r"^(?:FAILED|ERROR) (\S+)", output, flags=re.MULTILINE)
    if match:
        return match.group(1)
    lines = [line for line in output.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def suite(root: Path, ignore: list[str]) -> list[str]:
    """The test modules of `root` in the order they run: FIRST, then the others (pytest keeps the order of
    the files it is given, not of a folder it is given)."""
    found = [p.relative_to(root).as_posix() for folder in ("tests", "perf/tests")
             for p in sorted((root / folder).glob("test_*.py"))]
    return [m for m in dict.fromkeys([*FIRST, *found]) if m in found and m not in ignore]


def run_suite(root: Path, timeout_s: float, ignore: list[str]) -> tuple[bool, str, float]:
    """(passed, first failure, seconds) of the fast suite in `root`, without the modules `ignore`."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    # -n 0: in one process, in the order of suite() (the suite's own default spreads it over workers)
    command = [sys.executable, "-m", "pytest", "-m", "not slow", "-x", "-q", "-n", "0", "-p", "no:cacheprovider",
               *suite(root, ignore)]
    started = time.perf_counter()
    try:
        result = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return False, f"(timed out after {timeout_s:.0f} s)", time.perf_counter() - started
    seconds = time.perf_counter() - started
    output = result.stdout + result.stderr
    return result.returncode == 0, "" if result.returncode == 0 else first_failure(output), seconds


def check(mutation: Mutation | None, timeout_s: float, ignore: list[str]) -> tuple[bool, str, float]:
    """Copy the working tree, apply `mutation` (None: the baseline) and run the fast suite there."""
    sys.path.insert(0, str(REPO))
    from perf.repo_copy import copy_repo

    with tempfile.TemporaryDirectory(prefix="mutant-") as tmp:
        root = copy_repo(Path(tmp) / "repo")
        if mutation is not None:
            apply(mutation, root)
            ignore = [*ignore, *MUTANT_IGNORES]
        return run_suite(root, timeout_s, ignore)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python scripts/mutation_check.py", description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run these mutations only")
    parser.add_argument("--jobs", type=int, default=1, help="mutants checked at once (each runs one pytest)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the run of the unmutated copy")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per suite run")
    parser.add_argument("--ignore", nargs="+", default=[], metavar="PATH",
                        help="test modules to leave out (paths from the repository root)")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    args = parser.parse_args(argv)
    chosen = MUTATIONS
    if args.only:
        known = {m.name for m in MUTATIONS}
        unknown = [name for name in args.only if name not in known]
        if unknown:
            parser.error(f"unknown mutation {unknown[0]!r}; known: {', '.join(sorted(known))}")
        chosen = [m for m in MUTATIONS if m.name in args.only]
    if args.list:
        for m in chosen:
            print(f"{m.name:32s} {m.what} ({m.path})")
        return 0
    started = time.perf_counter()
    try:
        for m in chosen:  # fail before any copy when one no longer applies
            check_applies(m, REPO)
    except MutationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not args.no_baseline:
        passed, failure, seconds = check(None, args.timeout, args.ignore)
        print(f"baseline (no mutation): {'passes' if passed else 'FAILS at ' + failure} in {seconds:.0f} s", flush=True)
        if not passed:
            print("error: the fast suite fails without any mutation; fix that first", file=sys.stderr)
            return 2
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(lambda m: check(m, args.timeout, args.ignore), chosen))
    width = max(len(m.name) for m in chosen)
    print(f"\n{'mutation':{width}s}  caught  {'seconds':>7s}  by")
    for m, (passed, failure, seconds) in zip(chosen, results, strict=True):
        print(f"{m.name:{width}s}  {'no' if passed else 'yes':6s}  {seconds:7.0f}  {failure or '-'}")
    survived = [m.name for m, (passed, _, _) in zip(chosen, results, strict=True) if passed]
    print(f"\n{len(chosen) - len(survived)} of {len(chosen)} mutations caught in {time.perf_counter() - started:.0f} s"
          + (f"; surviving: {', '.join(survived)}" if survived else ""))
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
