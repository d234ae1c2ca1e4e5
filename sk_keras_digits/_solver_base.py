"""What every solver shares: the base class of the training loop's expectations.

A solver (:mod:`sk_keras_digits._solvers`,
:mod:`sk_keras_digits._keras_optimizer`) binds to a program, carries its state
record into the loop and out, and checks a state it did not make.
"""

STATE_PATH = "state.training.solver"


class _Solver:
    """What the training loop expects of a solver, with the pure defaults.

    A pure solver updates the list of parameter tensors as a function of
    tensors; its program needs no binding and no lock.
    """

    #: The fields of its state record with one value per trainable scalar:
    #: flat vectors in the record, one tensor per parameter in the loop.
    per_parameter = ()
    #: Whether a program needs the parameters' exact shapes to bind the
    #: solver (a Keras optimizer is built on variables of those shapes).
    stateful = False

    def bind(self, shapes, dtype, bind_optimizer):
        """The solver a program traces, for parameters of ``shapes``.

        Parameters
        ----------
        shapes : tuple of tuple of int
            The parameters' shapes (only read by a stateful solver).
        dtype : str
            Their dtype.
        bind_optimizer : callable
            The ``bind_optimizer`` of the backend module compiling the
            program (:mod:`sk_keras_digits._backends`).
        """
        return self

    def aligned_state(self, state, weights):
        """``state`` as this backend's program takes it (unchanged here)."""
        return state

    def start(self, params, state, unpack):
        """The state as the loop carries it, once per program call (tensors).

        ``unpack`` splits a flat vector into tensors shaped like ``params``:
        each :attr:`per_parameter` field becomes a tuple of them.
        """
        return state._replace(
            **{name: tuple(unpack(getattr(state, name))) for name in self.per_parameter}
        )

    def finish(self, state, pack):
        """The state record the program call returns: :meth:`start` undone.

        ``pack`` joins tensors shaped like the parameters into a flat vector.
        """
        return state._replace(
            **{name: pack(list(getattr(state, name))) for name in self.per_parameter}
        )

    @property
    def label(self):
        """The solver as the ``solver`` parameter names it, for messages."""
        return repr(self.name)

    def check_state(self, state, weights):
        """Refuse a solver state that this solver did not lay out for ``weights``.

        Parameters
        ----------
        state : SGDState, AdamState or OptimizerState
            The state to check (NumPy arrays).
        weights : Weights
            The network's weights the state goes with.

        Raises
        ------
        ValueError
            Naming the field (``state.training.solver.<field>``), its value
            and what was expected.
        """
        if type(state) is not self.state_type:
            raise ValueError(
                f"{STATE_PATH} should be a {self.state_type.__name__} for "
                f"solver={self.label}, got {_describe(state)}."
            )
        self._check_fields(state, weights)


def _describe(value):
    text = repr(value) if not isinstance(value, tuple) else type(value).__name__
    return text if len(text) <= 80 else text[:77] + "..."
