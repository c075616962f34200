"""The paper's grids (config/paper.yaml, paper_size.yaml, paper_table3.yaml) and the digits claim
grid: cell counts, methods per dataset, the protocol and learning rates of the official code, and
agreement between grids that share cells. The `snakemake -n` DAG tests run the real Snakefile.

Configs are merged over config/config.yaml as Snakemake merges --configfile (dicts merge, lists
replace): benchmark.config.load_config(..., base=config/config.yaml).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest
from conftest import copy_repo, workflow_env
from fixtures.configs import shipped

from benchmark.config import method_labels, train_settings
from benchmark.grid import Grid, cell_settings
from benchmark.schedules import learning_rate, sgdr_epochs

PAPER_DATASETS = ["cub", "nabirds", "cars", "flowers", "mit67", "cifar100"]
ONE_HOT = ["mse", "softmax_ce", "label_smoothing", "cosine", "cosine_ce"]
SEMANTIC = ["cosine_semantic", "cosine_ce_semantic"]
# Max learning rates of the official guide (CosineLoss.md Sec. 4.4; PAPER.md), per dataset:
# cross-entropy, label smoothing, cosine, cosine + CE.
PAPER_LR = {
    "cub": (0.05, 0.05, 0.5, 0.5), "nabirds": (0.05, 0.1, 0.5, 0.5), "cars": (1.0, 1.0, 1.0, 0.5),
    "flowers": (1.0, 0.1, 0.5, 0.5), "mit67": (0.05, 1.0, 2.5, 2.5), "cifar100": (0.1, 0.1, 0.05, 0.1),
}


def cells(config: dict) -> list[tuple]:
    """(dataset, method label, spc, split, seed) of every cell."""
    return [(c.dataset, c.method, c.spc, split, seed) for c, split, seed in Grid(config).cells()]


def test_paper_grid_cells_and_methods_per_dataset():
    config = shipped("paper")
    assert config["datasets"] == PAPER_DATASETS and config["samples_per_class"] == ["all"]
    labels = {d: method_labels(config, d) for d in PAPER_DATASETS}
    assert labels["cub"] == ONE_HOT + [f"{loss}-{h}" for loss in SEMANTIC
                                       for h in ("cub_flat", "cub_wikispecies", "cub_balanced")]
    assert labels["cifar100"] == ONE_HOT + [f"{loss}-cifar100" for loss in SEMANTIC]
    assert labels["nabirds"] == ONE_HOT + [f"{loss}-nabirds" for loss in SEMANTIC]  # its own taxonomy
    assert config["dataset_settings"]["nabirds"]["class_ids"] == "metadata"  # leaves are NABirds' ids
    for d in ("cars", "flowers", "mit67"):  # Table 2 has no semantic results for them
        assert labels[d] == ONE_HOT
    # 5 one-hot methods on each of the 6 datasets, plus the 2 semantic methods once per hierarchy:
    # CUB 3 (Table 3's flat, Wikispecies, deep), NABirds 1, CIFAR-100 1: 30 + 2 * 5 = 40 labels
    assert sum(map(len, labels.values())) == 40
    assert len(cells(config)) == 40 * 3 == len(set(cells(config)))
    assert len(Grid(config).packs) == 40 * 3  # seeds_per_job 1: hours-long cells spread over the GPUs


def test_paper_size_grid_cells():
    config = shipped("paper_size")
    counts = {d: {(c[1], c[2]) for c in cells(config) if c[0] == d} for d in ("cub", "cifar100")}
    assert {spc for _, spc in counts["cub"]} == {5, 10, 20, "all"}  # 30 per class is 'all' (smallest class 29)
    assert {spc for _, spc in counts["cifar100"]} == {10, 20, 50, 100, 200, "all"}
    assert {loss for loss, _ in counts["cub"]} == set(ONE_HOT) | {f"{s}-cub_balanced" for s in SEMANTIC}
    assert len(counts["cub"]) == 7 * 4 and len(counts["cifar100"]) == 7 * 6
    assert len(cells(config)) == (28 + 42) * 3 == 210
    assert config["seeds"] == [0, 1, 2]


def test_table3_overlay_is_the_cub_part_of_paper():
    table3, paper = shipped("paper", "paper_table3"), shipped("paper")
    assert len(cells(table3)) == 8 * 3
    assert set(cells(table3)) <= set(cells(paper))
    assert table3["reference"] == "config/reference/paper_table3.yaml"
    for dataset, loss, _, _, _ in cells(table3):
        assert cell_settings(table3, dataset, loss) == cell_settings(paper, dataset, loss)


def test_shared_cells_have_the_same_settings_in_paper_and_paper_size():
    """paper_size.yaml repeats paper.yaml's CUB and CIFAR-100 settings: a shared cell is one job."""
    paper, size = shipped("paper"), shipped("paper_size")
    shared = set(cells(paper)) & set(cells(size))
    assert len(shared) == 14 * 3  # the 'all' cells of CUB (cub_balanced) and CIFAR-100
    for dataset, loss, _, _, _ in shared:
        assert cell_settings(paper, dataset, loss) == cell_settings(size, dataset, loss), (dataset, loss)


@pytest.mark.parametrize("name", ["paper", "paper_size"])
def test_protocol_of_the_official_code(name):
    config = shipped(name)
    for dataset in config["datasets"]:
        lrs = dict(zip(["softmax_ce", "label_smoothing", "cosine", "cosine_ce"], PAPER_LR[dataset], strict=True))
        own_lr = config["dataset_settings"][dataset]["train"]["lr"]
        for label in method_labels(config, dataset):
            loss = label.split("-")[0]
            assert label in own_lr or loss in own_lr, f"{dataset}/{label} has no explicit learning rate"
            train = train_settings(config, dataset, label)
            if loss in lrs:
                assert train["lr"] == lrs[loss], (dataset, label)
            if loss in SEMANTIC:  # our choice: the rate of the one-hot counterpart
                assert train["lr"] == lrs[loss.replace("_semantic", "")], (dataset, label)
            assert train["epochs"] == sgdr_epochs(12, 2, 5) == 372
            assert train["schedule"] == {"name": "sgdr", "first_cycle": 12, "cycle_mult": 2, "min_lr": 1e-6}
            assert train["recipe"]["mixup"]["alpha"] == 0 and train["recipe"]["ema"]["decay"] == 0  # no recipe
            assert train["optimizer"]["momentum"] == 0.9 and train["grad_clip_norm"] == 10.0
            assert train["validation_fraction"] == 0.0 and train["select"] == "last"
            if dataset == "cifar100":
                assert train["batch_size"] == 100
                assert train["optimizer"]["weight_decay"] == 4e-4  # Keras l2(2e-4): gradient 2 * 2e-4 * w
                assert train["optimizer"]["weight_decay_on"] == "kernels"
            else:
                assert train["batch_size"] == 96 and train["optimizer"]["weight_decay"] == 0.0
        ds = config["dataset_settings"][dataset]
        if dataset == "cifar100":
            assert ds["model"] == "cifar_resnet110_wide"
            assert ds["augment"] == {"hflip": True, "max_shift": 5, "shift_fill": "nearest"}
        else:
            assert ds["model"] == "resnet50"
            assert ds["augment"]["crop"] == (224 if dataset == "mit67" else 448) and ds["augment"]["hflip"]
            assert ds["augment"]["erase"] == {"p": 0.5, "area": [0.02, 0.3], "aspect": [0.3, 3.33]}
    assert config["method_settings"]["cosine_ce"] == {"ce_weight": 0.1, "head_weight_decay": 1e-3}


def test_paper_schedule_restarts_after_12_36_84_180():
    """The learning rates the trainer computes from paper.yaml's settings, epoch by epoch."""
    train = train_settings(shipped("paper"), "cub", "cosine")
    lrs = [learning_rate(epoch, train["epochs"], train["lr"], train["schedule"]) for epoch in range(train["epochs"])]
    assert [e for e in range(1, 372) if lrs[e] > lrs[e - 1]] == [12, 36, 84, 180]
    assert lrs[-1] == pytest.approx(1e-6) and max(lrs) <= 0.5


def test_claim_digits_grid():
    config = shipped("claim_digits")
    # digits: 3 methods x 6 sizes, mnist5k: its own 4 sizes; each on 3 splits x 5 seeds
    assert len(cells(config)) == 3 * (6 + 4) * 3 * 5
    assert {c[2] for c in cells(config) if c[0] == "mnist5k"} == {2, 5, 10, 50}
    assert config["baseline"] == "softmax_ce"


@pytest.mark.slow
@pytest.mark.parametrize("configfiles,packs,embeddings", [
    (["config/paper.yaml"], 120, 5),  # embeddings: 3 CUB hierarchies, NABirds, CIFAR-100
    (["config/paper_size.yaml"], 210, 2),
    (["config/paper.yaml", "config/paper_table3.yaml"], 24, 3),
], ids=["paper", "paper_size", "paper_table3"])
def test_dry_run_builds_the_dag_in_seconds(tmp_path, configfiles, packs, embeddings):
    repo = copy_repo(tmp_path / "repo")
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "4", "--configfile", *configfiles],
                            cwd=repo, env=workflow_env(repo), capture_output=True, text=True)
    seconds = time.perf_counter() - started
    assert result.returncode == 0, result.stdout + result.stderr
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", result.stdout, flags=re.MULTILINE))
    print(f"\n{' '.join(configfiles)}: DAG of {counts.get('total')} jobs in {seconds:.1f} s")
    assert int(counts["train"]) == packs
    assert int(counts["class_embeddings"]) == embeddings
    assert seconds < 30
