"""Every grid shipped in config/ validates as its header says to run it, with the cells it is documented to
have: a config that an edit of the schema or of config/config.yaml broke fails here, not on a user's cluster."""

from __future__ import annotations

import pytest
from fixtures.configs import shipped

from benchmark.config import REPO_ROOT
from benchmark.grid import Grid

CONFIG = REPO_ROOT / "config"
# grid file -> (the files before it on the command line (overlays), cells)
SHIPPED = {
    "config": ((), 75),
    "cifar100_lt": ((), 18),
    "claim_digits": ((), 450),
    "deic": ((), 20),
    "distill": ((), 105),
    "longtail": ((), 144),
    "longtail_if50": (("longtail",), 144),
    "methods": ((), 384),
    "paper": ((), 120),
    "paper_fp32": (("paper",), 120),
    "paper_size": ((), 210),
    "paper_table3": (("paper",), 24),
    "paper_tuned": (("paper",), 120),
    "tuned": ((), 750),
    "tuned_first_seed": (("tuned",), 330),  # digits: 22 methods x 5 sizes x 3 draws x 1 seed
    "tuned_grid_check": (("tuned",), 90),  # 5 losses x 3 sizes x 3 draws x 2 seeds
}
NOT_GRIDS = {"datasets"}  # config/datasets.yaml: the DVC stages' parameters


def test_every_config_file_is_listed_here():
    assert {p.stem for p in CONFIG.glob("*.yaml")} - NOT_GRIDS == set(SHIPPED)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_grid_validates_with_its_cells(name):
    before, cells = SHIPPED[name]
    assert len(Grid(shipped(*before, name)).cells()) == cells
