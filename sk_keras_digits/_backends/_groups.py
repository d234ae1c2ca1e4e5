"""How a compiled training loop carries the parameters: each, or one flat vector.

XLA compiles the loop either way to the same numbers (the solvers' rules are
element-wise), but not at the same cost (:data:`FLAT_PARAMS`). A
:class:`ParameterGroups` turns the parameters into what the loop carries (its
*groups*) and back, and lays out a solver state's flat per-parameter vectors
(:meth:`~sk_keras_digits._solvers.SGD.start`) the same way. Backend-neutral:
the backend module passes its own ``pack`` and ``unpack``.
"""

#: Most parameters a loop carries as one flat vector. Small networks train
#: as fast either way and their programs compile faster flat (the tutorial's
#: in 0.95 s instead of 1.3 s here); from about 20,000 parameters on, a step
#: on one flat vector costs more (30% at 64-256-10, 6 times at MNIST's
#: 784-256-128-10: XLA feeds the matrix products slices of the vector and
#: fuses the concatenated gradients into the update).
FLAT_PARAMS = 1 << 13


def carries_flat(n_params, solver):
    """Whether a loop training ``n_params`` parameters with ``solver`` is flat.

    A Keras optimizer's program is built on each parameter
    (:class:`~sk_keras_digits._keras_optimizer.SlotLayout`).
    """
    return not solver.stateful and int(n_params) <= FLAT_PARAMS


class ParameterGroups:
    """The parameters as a compiled loop carries them.

    Parameters
    ----------
    flat : bool
        One flat vector (in the order of the parameters), or one tensor per
        parameter.
    pack, unpack : callable
        The backend's functions joining tensors shaped like the parameters
        into one flat vector, and splitting it again.
    """

    def __init__(self, flat, pack, unpack):
        self.flat = bool(flat)
        self.pack = pack
        self.unpack = unpack

    def of(self, params):
        """The groups holding ``params``."""
        return (self.pack(list(params)),) if self.flat else tuple(params)

    def params(self, groups):
        """The parameters the ``groups`` hold, as a list of tensors."""
        return list(self.unpack(groups[0])) if self.flat else list(groups)

    def split(self, vector):
        """A flat per-parameter vector (of a solver state, a mask) as groups."""
        return (vector,) if self.flat else tuple(self.unpack(vector))

    def join(self, groups):
        """Groups of a per-parameter vector, flat again: :meth:`split` undone."""
        return groups[0] if self.flat else self.pack(list(groups))
