"""The tests' tensor comparison (tests/fixtures/tensors.py) fails where torch.testing.assert_close would."""

import pytest
import torch
from fixtures.tensors import assert_close


def test_close_tensors_pass_and_the_tolerances_follow_the_dtype():
    assert_close(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0 + 1e-6]))
    assert_close(torch.tensor([1.0], dtype=torch.float64), torch.tensor([1.0 + 5e-8], dtype=torch.float64))
    with pytest.raises(AssertionError, match="largest difference 1e-06"):
        assert_close(torch.tensor([1.0], dtype=torch.float64), torch.tensor([1.0 + 1e-6], dtype=torch.float64))


@pytest.mark.parametrize(("actual", "expected", "what"), [
    (torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.1]), "not close"),
    (torch.tensor([1.0]), torch.tensor([1.0, 1.0]), "shape"),
    (torch.tensor([1.0]), torch.tensor([1.0], dtype=torch.float64), "dtype"),
    (torch.tensor([1, 2]), torch.tensor([1, 3]), "not close"),  # integers: exact
    (torch.tensor([float("nan")]), torch.tensor([float("nan")]), "not close"),
])
def test_what_is_not_close_fails(actual, expected, what):
    with pytest.raises(AssertionError, match=what):
        assert_close(actual, expected)
