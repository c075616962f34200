"""Long-tailed grids and teachers in the grid, without training: the imbalance setting in the cells'
settings and subsets, its config checks, the tables' metric; teachers' settings, code, packs, roles, the
student's teacher identity and its MLflow tags."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.aggregate import primary_metric
from benchmark.code import cell_roots, code_files
from benchmark.config import ConfigError, validate
from benchmark.data.prepared import Prepared
from benchmark.grid import Grid, cell_settings
from benchmark.packs import teacher_identity
from benchmark.records import RecordError, mismatch
from benchmark.registry import METHODS, WITHOUT_MIXING
from benchmark.targets import load
from benchmark.tracking import start_cell_run
from benchmark.train import Cell
from benchmark.train.build import training_subset


def grid_config(**top) -> dict:
    return validate({
        "grid": "t", "datasets": ["digits"], "methods": ["softmax_ce", "m2m"], "samples_per_class": [20, 50],
        "seeds": [0], "device": "cpu", "precision": "fp32", "tracking": False, "train": {"lr": 0.1},
        "dataset_settings": {"digits": {"model": "small_cnn"}}, **top})


def test_imbalance_is_in_the_key_only_when_on():
    balanced = cell_settings(grid_config(), "digits", "softmax_ce")
    assert "imbalance" not in balanced  # balanced grids keep the keys they had
    longtail = cell_settings(grid_config(imbalance={"factor": 10}), "digits", "softmax_ce")
    assert longtail["imbalance"] == {"factor": 10, "profile": "exponential"}
    step = cell_settings(grid_config(imbalance={"factor": 10, "profile": "step"}), "digits", "softmax_ce")
    assert len({Grid(grid_config()).configurations[0].key, *(Grid(grid_config(imbalance=i)).configurations[0].key
                for i in ({"factor": 10}, {"factor": 10, "profile": "step"}))}) == 3
    assert step["imbalance"]["profile"] == "step"
    # M2m's classifier g is the CE cell of the same long-tailed subset: the same settings, the same key
    m2m = cell_settings(grid_config(imbalance={"factor": 10}), "digits", "m2m")
    assert m2m["teacher"]["settings"] == longtail


def test_factor_above_the_largest_class_is_refused_in_one_line():
    with pytest.raises(ConfigError, match=r"imbalance.factor.*50 at samples per class 20 on digits.*use "
                                          r"samples_per_class >= 50"):
        grid_config(imbalance={"factor": 50})
    grid_config(imbalance={"factor": 50}, samples_per_class=[50, "all"])  # all: 124, the smallest class


def _prepared(per_class: list[int]) -> Prepared:
    labels = np.repeat(np.arange(len(per_class)), per_class)
    return Prepared(images=np.zeros((labels.size, 2, 2, 1), np.uint8), labels=labels, train_idx=np.arange(labels.size),
                    test_idx=np.zeros(0, np.int64), metadata={"classes": [str(c) for c in range(len(per_class))]})


def test_training_subset_follows_the_profile_and_is_nested_across_sizes():
    prepared = _prepared([60, 70, 80, 90])
    settings = {"imbalance": {"factor": 4, "profile": "exponential"}}
    subsets = {n: training_subset(Cell("toy", "m", n, 1, 0), settings, prepared) for n in (20, 40, "all")}
    counts = {n: sorted(np.bincount(prepared.labels[s], minlength=4).tolist()) for n, s in subsets.items()}
    # int(n (1/4)^(i/3)): 20 -> 20, 12, 7, 5; 40 -> 40, 25, 15, 10; all = 60 (the smallest class) -> 60, 37, 23, 15
    assert counts == {20: [5, 7, 12, 20], 40: [10, 15, 25, 40], "all": [15, 23, 37, 60]}
    assert set(subsets[20]) <= set(subsets[40]) <= set(subsets["all"])
    same_rank = np.bincount(prepared.labels[subsets[20]], minlength=4).argsort()
    assert (np.bincount(prepared.labels[subsets[40]], minlength=4).argsort() == same_rank).all()
    balanced = training_subset(Cell("toy", "m", 20, 1, 0), {}, prepared)
    assert np.bincount(prepared.labels[balanced]).tolist() == [20] * 4
    other_split = training_subset(Cell("toy", "m", 40, 2, 0), settings, prepared)
    assert not np.array_equal(other_split, subsets[40])


def test_balanced_accuracy_is_the_metric_of_imbalanced_grids():
    assert primary_metric(grid_config()) == ("accuracy", "test accuracy")
    assert primary_metric(grid_config(imbalance={"factor": 10})) == ("balanced_accuracy", "test balanced accuracy")


def test_methods_without_mixing_are_the_registry_set_and_a_mixing_config_is_refused():
    from benchmark.methods import Method

    classes = {name: load(target) for name, target in METHODS.items()}
    refused = {name for name, cls in classes.items()
               if isinstance(cls, type) and issubclass(cls, Method) and not cls.supports_mixing}
    assert refused == WITHOUT_MIXING
    with pytest.raises(ConfigError, match=r"'m2m' cannot train on mixed batches"):
        grid_config(train={"lr": 0.1, "recipe": {"mixup": {"alpha": 1.0}}})


def test_student_settings_name_the_teachers_code_so_editing_it_reruns_the_student():
    config = grid_config(methods=["kd", "sd_g2"], variants={
        "sd_g1": {"method": "kd", "settings": {"alpha": 0.5}},
        "sd_g2": {"method": "kd", "settings": {"alpha": 0.5, "teacher": "sd_g1"}}})
    kd = cell_settings(config, "digits", "kd")
    assert kd["extra_targets"] == [METHODS["softmax_ce"]]
    assert "benchmark/losses/softmax.py" in code_files(cell_roots(kd))
    sd_g2 = cell_settings(config, "digits", "sd_g2")  # its teacher's teacher is softmax_ce
    assert sd_g2["extra_targets"] == [METHODS["softmax_ce"]]
    assert sd_g2["teacher"]["settings"]["teacher"]["label"] == "softmax_ce"
    plain = cell_settings(config, "digits", "softmax_ce")
    assert "benchmark/methods/distill.py" not in code_files(cell_roots(plain))


def test_unknown_teacher_is_refused_in_one_line():
    with pytest.raises(ConfigError, match=r"the teacher 'nope' of 'kd' is neither a registered method nor a variant"):
        Grid(grid_config(methods=["kd"], method_settings={"kd": {"teacher": "nope"}}))


def test_shared_teacher_is_one_pack_and_a_non_row_teacher_has_the_teacher_role():
    grid = Grid(grid_config(methods=["kd", "rkd", "m2m"], samples_per_class=[20]))
    by_method = {p.configuration.method: p for p in grid.packs}
    assert sorted(by_method) == ["kd", "m2m", "rkd", "softmax_ce"] and len(grid.packs) == 4
    teacher = by_method["softmax_ce"]
    assert teacher.save_weights and not teacher.row and teacher.spec()["role"] == "teacher"
    for student in ("kd", "rkd", "m2m"):
        assert by_method[student].teacher_marker == teacher.marker
        assert "role" not in by_method[student].spec() and not by_method[student].save_weights
    row = Grid(grid_config(methods=["softmax_ce", "kd"], samples_per_class=[20]))
    assert all(p.row and "role" not in p.spec() for p in row.packs)
    assert [c.method for c in grid.configurations] == ["kd", "rkd", "m2m"]  # the teacher is no table row


def test_teacher_identity_hashes_tensors_not_files(tmp_path):
    state = {"w": torch.arange(6.0).reshape(2, 3), "n": torch.tensor(3)}
    torch.save(state, tmp_path / "a.pt")
    torch.save(state, tmp_path / "weights.pt")  # another archive name inside the file: other bytes
    assert teacher_identity(tmp_path / "a.pt") == teacher_identity(tmp_path / "weights.pt")
    torch.save({**state, "w": state["w"] + 1e-6}, tmp_path / "b.pt")
    assert teacher_identity(tmp_path / "b.pt") != teacher_identity(tmp_path / "a.pt")
    with pytest.raises(RecordError, match=r"missing.pt is missing: the teacher's cell must be trained first"):
        teacher_identity(tmp_path / "missing.pt")


def test_a_student_record_of_other_teacher_weights_is_not_used():
    cell = {"dataset": "digits", "method": "kd", "samples_per_class": 20, "split": 0, "seed": 0}
    record = {"cell": cell, "identity": {"settings": "k", "code": "c", "data": "d", "teacher": "t1"}}
    assert mismatch(record, cell, {"settings": "k", "code": "c", "data": "d", "teacher": "t1"}) is None
    assert "teacher identity is t1" in mismatch(record, cell, {"settings": "k", "code": "c", "data": "d",
                                                               "teacher": "t2"})
    assert mismatch(record, cell, {"settings": "k", "code": "c", "data": "d"}) is None  # the tables ask no teacher


class _Client:
    """The MLflow client calls start_cell_run makes, recorded."""

    def __init__(self):
        self.tags = None

    def create_run(self, experiment_id, run_name, tags):
        self.tags = tags
        return type("Run", (), {"info": type("Info", (), {"run_id": "r1"})()})()

    def log_batch(self, *args, **kwargs):
        pass

    def log_inputs(self, *args, **kwargs):
        pass


@pytest.mark.slow  # importing mlflow takes seconds
def test_mlflow_tags_say_teacher_and_student():
    config = grid_config(methods=["kd"], samples_per_class=[20])
    info = {"experiment": "t", "experiment_id": "1", "parent_run_id": "p"}
    cell = {"dataset": "digits", "method": "kd", "samples_per_class": 20, "split": 1, "seed": 2}
    client = _Client()
    kd = cell_settings(config, "digits", "kd")
    start_cell_run(client, info, cell, kd, {"settings": "k", "code": "c", "data": "d"}, "t")
    assert client.tags["teacher"] == "digits/softmax_ce/spc20/split1/seed2"
    assert client.tags["teacher_key"] == kd["teacher"]["key"] and "role" not in client.tags
    start_cell_run(client, info, {**cell, "method": "softmax_ce"}, kd["teacher"]["settings"],
                   {"settings": "k", "code": "c", "data": "d"}, "t", role="teacher")
    assert client.tags["role"] == "teacher" and "teacher" not in client.tags


def test_a_copy_of_a_student_shares_its_teacher_and_the_data():
    """The recipe's EMA deep-copies the method: a copy of the teacher (or, for M2m, of the cell's whole
    training set on the device) would double the memory for nothing."""
    import copy

    from torch import nn

    from benchmark.methods.distill import KnowledgeDistillation
    from benchmark.methods.m2m import M2m

    teacher, images = nn.Linear(2, 2), object()
    kd = KnowledgeDistillation(nn.Linear(2, 2), teacher, alpha=0.5, temperature=1.0)
    twin = copy.deepcopy(kd)
    assert twin.teacher is teacher and twin.model is not kd.model and twin.network is twin.model
    assert list(twin.state_dict()) == ["model.weight", "model.bias"]
    m2m = copy.deepcopy(M2m(nn.Linear(2, 2), teacher, images, [1, 2], 3, {}))
    assert m2m.images is images and m2m.teacher is teacher
