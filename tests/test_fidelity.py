"""Protocol details taken from the official code (github.com/cvjena/semantic-embeddings): the cosine +
CE head's Keras BatchNorm, the `official` steps per epoch (CUB numbers of shared/reference/PAPER.md),
and the replication configs (fp32 overlay, CUB's official steps in the paper grids)."""

from __future__ import annotations

import copy

import pytest
import torch
import yaml
from fixtures.tensors import assert_close

from benchmark.config import REPO_ROOT, ConfigError, load_config, validate
from benchmark.grid import Grid, cell_settings
from benchmark.losses.cosine import CosineCrossEntropyLoss
from benchmark.train.data import steps_per_epoch

CONFIG = REPO_ROOT / "config"


def test_cosine_ce_head_batchnorm_has_keras_epsilon_and_momentum():
    loss = CosineCrossEntropyLoss(4, 4, ce_weight=0.1, head_weight_decay=1e-3)
    bn = loss.head[1]
    assert isinstance(bn, torch.nn.BatchNorm1d) and (bn.eps, bn.momentum) == (1e-3, 0.01)
    # One training step moves the running statistics 1% of the way (Keras: 0.99 old + 0.01 new).
    rows = torch.tensor([[1.0, 2.0, 0.5, -1.0], [0.5, -1.0, 2.0, 1.0], [2.0, 0.5, -1.0, 1.5]])
    relu = torch.relu(torch.nn.functional.normalize(rows, dim=1)).double()
    loss.train()
    loss(rows, torch.tensor([0, 1, 2]))
    assert_close(bn.running_mean.double(), 0.01 * relu.mean(0))
    assert_close(bn.running_var.double(), 0.99 + 0.01 * relu.var(0, unbiased=True))
    # At test time the head normalises with the running statistics and epsilon 1e-3.
    loss.eval()
    linear = loss.head[2]
    z = (relu - bn.running_mean.double()) / torch.sqrt(bn.running_var.double() + 1e-3)
    expected = z @ linear.weight.double().T + linear.bias.double()
    assert_close(loss.scores(rows).double(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("spc", "subset", "steps"), [(5, 1000, 66), (10, 2000, 63), (20, 4000, 42),
                                                       ("all", 5994, 63)])
def test_official_steps_per_epoch_are_the_papers_cub_numbers(spc, subset, steps):
    """CUB, 200 classes, batch 96: ceil(200 X / 96) x (30 // X) = 11 x 6, 21 x 3, 42 x 1; all: ceil(5994 / 96)."""
    train = {"steps_per_epoch": "official", "batch_size": 96}
    assert steps_per_epoch(train, 5994, subset, spc) == steps
    assert steps_per_epoch({**train, "steps_per_epoch": "auto"}, 5994, subset, spc) == 63  # the full pool's
    assert steps_per_epoch({**train, "steps_per_epoch": 7}, 5994, subset, spc) == 7


def test_official_steps_beyond_thirty_per_class_repeat_once():
    train = {"steps_per_epoch": "official", "batch_size": 100}
    assert steps_per_epoch(train, 50000, 100 * 50, 50) == 50  # 30 // 50 = 0 repeats would be no epoch
    assert steps_per_epoch(train, 50000, 100 * 30, 30) == 30


def _digits() -> dict:
    return yaml.safe_load((CONFIG / "config.yaml").read_text())


def test_schema_accepts_official_steps_and_names_a_typo():
    config = _digits()
    config["train"]["steps_per_epoch"] = "official"
    assert validate(copy.deepcopy(config))["train"]["steps_per_epoch"] == "official"
    config["train"]["steps_per_epoch"] = "offical"
    with pytest.raises(ConfigError, match="steps_per_epoch"):
        validate(config)


def _keys(config: dict) -> dict:
    return {(c.dataset, c.method, c.spc): c.key for c in Grid(config).configurations}


def test_fp32_overlay_changes_only_the_precision_and_the_grid_name():
    paper = load_config(CONFIG / "paper.yaml", base=CONFIG / "config.yaml")
    fp32 = load_config(CONFIG / "paper.yaml", CONFIG / "paper_fp32.yaml", base=CONFIG / "config.yaml")
    assert (fp32["grid"], fp32["precision"]) == ("paper_fp32", "fp32")
    assert {**fp32, "grid": "paper", "precision": paper["precision"]} == paper
    paper["device"] = fp32["device"] = "cuda"  # where bf16 is the default: every cell is another one
    keys, keys32 = _keys(paper), _keys(fp32)
    assert keys.keys() == keys32.keys() and not set(keys.values()) & set(keys32.values())
    settings = cell_settings(fp32, "cub", "cosine_ce")
    assert settings["precision"] == "fp32" and cell_settings(paper, "cub", "cosine_ce")["precision"] == "bf16"


def test_paper_grids_train_cub_with_the_official_steps_and_share_the_full_set_cells():
    paper = load_config(CONFIG / "paper.yaml", base=CONFIG / "config.yaml")
    size = load_config(CONFIG / "paper_size.yaml", base=CONFIG / "config.yaml")
    for config in (paper, size):
        assert cell_settings(config, "cub", "softmax_ce")["train"]["steps_per_epoch"] == "official"
        assert cell_settings(config, "cifar100", "softmax_ce")["train"]["steps_per_epoch"] == "auto"
    shared = set(_keys(paper).items()) & set(_keys(size).items())
    cub_all = {k for k in _keys(size) if k[0] == "cub" and k[2] == "all"}
    assert cub_all and cub_all <= {k for k, _ in shared}  # the same settings key: one job for both grids


def test_photos_are_stored_whole_and_mit67_as_the_official_defaults():
    datasets = yaml.safe_load((CONFIG / "datasets.yaml").read_text())
    paper = load_config(CONFIG / "paper.yaml", base=CONFIG / "config.yaml")
    assert (datasets["mit67"]["resolution"], paper["dataset_settings"]["mit67"]["augment"]["crop"]) == (256, 224)
    for name in ("cub", "nabirds", "cars", "flowers", "mit67"):  # the whole image, as the official loaders
        assert datasets[name]["crop"] == "whole" and datasets[name]["max_aspect"] == 1.5
