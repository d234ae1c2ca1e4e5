"""Methods offered under some parameters only, with the reason in the error."""

import pytest

from sk_keras_digits._availability import available_if


class Solver:
    def __init__(self, stochastic):
        self.stochastic = stochastic

    def _check(self):
        if not self.stochastic:
            raise AttributeError("only stochastic solvers step one batch at a time.")

    @available_if(lambda solver: solver._check())
    def step(self, value):
        """Take one step."""
        return value + 1


def test_an_available_method_is_bound_and_documented():
    solver = Solver(stochastic=True)
    assert hasattr(solver, "step") and solver.step(1) == 2
    assert Solver.step.__doc__ == "Take one step." and Solver.step.__name__ == "step"
    assert Solver.step(solver, 2) == 3  # called on the class


def test_an_unavailable_method_is_missing_with_its_reason():
    solver = Solver(stochastic=False)
    assert not hasattr(solver, "step")
    message = "'Solver' has no attribute 'step': only stochastic solvers step"
    with pytest.raises(AttributeError, match=message) as caught:
        solver.step  # noqa: B018
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    with pytest.raises(AttributeError, match=message):
        Solver.step(solver, 1)  # through the class: checked when called
