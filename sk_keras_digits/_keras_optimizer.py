"""A user's ``keras.optimizers.Optimizer`` as a solver.

:class:`KerasOptimizer` trains with a user's optimizer, rebuilt from its class
and config. The backend module decides its form in the program
(:meth:`KerasOptimizer.bind`): on JAX a :class:`StatelessKerasOptimizer`
(``Optimizer.stateless_apply``, a pure function like the built-in rules); on
TensorFlow, where ``stateless_apply`` is not supported, a private optimizer
whose variables each call loads and reads back. Either way its state crosses
the program's boundary as a record
(:class:`~sk_keras_digits._state.OptimizerState`), so a fit's state lives in
the estimator, never in the program.

The record of an element-wise optimizer (:attr:`KerasOptimizer.ELEMENTWISE`)
holds the variables of the optimizer built on the flat parameter vector, as
the built-in solvers' records hold flat moments; the program builds it on
each parameter, as the built-in solvers' loops update each parameter, and
:class:`SlotLayout` carries the variables between the two layouts.
"""

import json
from typing import NamedTuple

import numpy as np

from ._backends import import_keras
from ._cache import LRUCache
from ._names import qualified_name
from ._optimizer_checks import check_settings
from ._schedules import Constant
from ._solver_base import STATE_PATH, _describe, _Solver
from ._state import OptimizerState


class OptimizerLearningRate(Constant):
    """The learning rate a Keras optimizer applies now; the rule stops training.

    The optimizer owns its learning rate and schedule: this reports
    ``optimizer.learning_rate`` (a ``LearningRateSchedule`` evaluated at the
    optimizer's ``iterations``) after each epoch, and stops training when the
    ``n_iter_no_change`` rule fires, as with ``solver="adam"``.
    """

    key = "keras"

    def __init__(self, optimizer, stateless):
        self.optimizer = optimizer
        self.stateless = stateless

    def after_epoch(self, learning_rate, samples_seen, hyper, solver_state):
        """The optimizer's learning rate, read from its variables' new values.

        With a stateless optimizer its variables' values are ``solver_state``
        (a schedule is evaluated at the ``iterations`` they hold); a stateful
        one holds them itself.
        """
        keras = import_keras()

        if self.stateless:
            mapping = list(
                zip(self.optimizer.variables, solver_state.variables, strict=True)
            )
            with keras.StatelessScope(state_mapping=mapping):
                rate = self.optimizer.learning_rate
        else:
            rate = self.optimizer.learning_rate
        return keras.ops.cast(rate, learning_rate.dtype)


_DEFAULT_CONFIGS = LRUCache(64)


def default_config(optimizer_class):
    """The ``get_config()`` of ``optimizer_class()`` (empty where it takes
    required arguments): the types its settings take."""
    from ._fixes import automatic_names_kept, serialization_without_tensorflow

    def build():
        try:
            with serialization_without_tensorflow(), automatic_names_kept():
                return optimizer_class().get_config()
        except Exception:  # e.g. a wrapper that needs an inner optimizer
            return {}

    return dict(_DEFAULT_CONFIGS.get(optimizer_class, build))


def describe(optimizer):
    """A short name for an optimizer object in messages: ``'<AdamW>'``."""
    return f"<{type(optimizer).__name__}>"


def _canonical_config(config):
    """``config`` as canonical JSON, without the optimizer's (unique) name.

    Keras gives every optimizer a name made unique in the process (``adam``,
    ``adam_1``, ...); the name does not change the computation, so it is
    left out of the key.
    """
    config = {k: v for k, v in config.items() if k != "name"}
    return json.dumps(config, sort_keys=True, default=repr)


class KerasOptimizer(_Solver):
    """A ``keras.optimizers.Optimizer``, rebuilt from its class and config.

    The user's optimizer is only read (its class and ``get_config()``): it is
    never built, applied or changed. Every fit starts from a fresh optimizer's
    state (:meth:`initial_state`); the compiled program trains with its own
    optimizer built from the same config (:meth:`bind`), into whose variables
    each call assigns the incoming state and from which it reads the new one.

    Parameters
    ----------
    optimizer : keras.optimizers.Optimizer
        The user's optimizer (not built by this object).
    """

    name = "keras"
    stateful = True
    state_type = OptimizerState

    class Hyper(NamedTuple):
        """No numbers: the optimizer's own are part of :attr:`key`."""

    #: Keras' optimizers whose update of a scalar depends only on that
    #: scalar's gradient and slots (and on global counters): built on one
    #: flat variable, they compute what they compute on the parameters'
    #: shapes, in fewer (larger) operations. Exact classes only: a subclass
    #: may change the rule. ``clipnorm`` (a norm per variable) opts out.
    ELEMENTWISE = (
        "Adadelta",
        "Adagrad",
        "Adam",
        "Adamax",
        "AdamW",
        "Ftrl",
        "Lion",
        "Nadam",
        "RMSprop",
        "SGD",
    )

    def __init__(self, optimizer):
        keras = import_keras()

        if not isinstance(optimizer, keras.optimizers.Optimizer):
            raise TypeError(
                "solver must be 'lbfgs', 'sgd', 'adam' or a "
                f"keras.optimizers.Optimizer instance; got {optimizer!r}."
            )
        from ._fixes import serialization_without_tensorflow

        with serialization_without_tensorflow():
            config = optimizer.get_config()
        try:
            check_settings(config, default_config(type(optimizer)))
        except ValueError as exc:
            raise ValueError(f"solver={describe(optimizer)} has {exc}.") from None
        if config.get("use_ema"):
            raise ValueError(
                f"solver={describe(optimizer)} has use_ema=True, which is not "
                "supported: the estimator keeps the trained weights, not their "
                "moving average. Pass an optimizer with use_ema=False."
            )
        # Set by ``exclude_from_weight_decay``, which get_config() leaves out:
        # a copy made from the config would decay every variable.
        if getattr(optimizer, "_exclude_from_weight_decay", None) or getattr(
            optimizer, "_exclude_from_weight_decay_pattern", None
        ):
            raise ValueError(
                f"solver={describe(optimizer)} excludes variables from weight "
                "decay (exclude_from_weight_decay), which its get_config() does "
                "not record, so the optimizer cannot be rebuilt with it. Use "
                "alpha (an L2 penalty on the kernels only) instead."
            )
        self.optimizer_class = type(optimizer)
        self.config = config
        self.schedule = Constant()
        self.elementwise = (
            any(
                self.optimizer_class is getattr(keras.optimizers, name)
                for name in self.ELEMENTWISE
            )
            and config.get("clipnorm") is None
        )
        #: The optimizer's class and configuration: they shape the graph.
        self.key = (
            self.name,
            qualified_name(self.optimizer_class),
            _canonical_config(config),
        )

    def layout(self, shapes):
        """Shapes of the variables the optimizer is built on, for ``shapes``.

        One flat vector for an element-wise optimizer (the order of the
        parameters, flattened: the training loop's own layout), else the
        parameters' shapes.
        """
        if self.elementwise:
            return ((sum(int(np.prod(s)) for s in shapes),),)
        return shapes

    def new_optimizer(self):
        """A fresh, unbuilt optimizer of the user's class and config."""
        try:
            return self.optimizer_class.from_config(self.config)
        except Exception as exc:
            raise ValueError(
                f"solver={self.label} cannot be rebuilt from its get_config() "
                f"({type(exc).__name__}: {str(exc)[:200]}): a fit trains a fresh "
                "copy of the optimizer, so an optimizer that wraps another "
                "(LossScaleOptimizer) or takes its learning rate as a function "
                "is not supported. Pass the optimizer itself, with a number or a "
                "keras.optimizers.schedules schedule as its learning rate."
            ) from exc

    def initial_state(self, weights):
        """The state of a fresh optimizer built for ``weights``' parameters."""
        shapes = self.layout(tuple(p.shape for p in weights.params))
        dtype = weights.params[0].dtype.name
        from ._backends import name

        values = _INITIAL.get(
            (name(), self.key, shapes, dtype),
            lambda: _initial_values(self, shapes, dtype),
        )
        return OptimizerState(values)

    def aligned_state(self, state, weights):
        """``state`` with each variable in this backend's dtype for it.

        Backends keep an optimizer's counter in different integer types
        (``iterations`` is int64 on TensorFlow, int32 on JAX without x64),
        so a state saved on one backend continues training on another.
        """
        expected = self.initial_state(weights).variables
        return OptimizerState(
            tuple(
                np.asarray(v, dtype=e.dtype)
                for v, e in zip(state.variables, expected, strict=True)
            )
        )

    def bind(self, shapes, dtype, bind_optimizer):
        """The backend's form of this optimizer, for parameters of ``shapes``."""
        return bind_optimizer(self, shapes, dtype)

    @property
    def label(self):
        return f"<{self.optimizer_class.__name__}>"

    def _check_fields(self, state, weights):
        check_variables(state)
        expected = self.initial_state(weights).variables
        layout = [(v.shape, _kind(v.dtype)) for v in state.variables]
        wanted = [(v.shape, _kind(v.dtype)) for v in expected]
        if layout != wanted:
            raise ValueError(
                f"{STATE_PATH}.variables should be laid out as "
                f"{self.optimizer_class.__name__}'s variables {wanted} for these "
                f"weights, got {layout}."
            )


def _kind(dtype):
    """A variable's dtype as a layout compares it: any width of integer counts.

    Backends count steps in different integer types; float slots must have
    the parameters' own dtype.
    """
    return "integer" if dtype.kind in "iu" else dtype.str


def check_variables(state):
    """Refuse a Keras optimizer's variables that are not finite numbers.

    Their layout is the optimizer's own (:meth:`KerasOptimizer.check_state`).
    """
    where = f"{STATE_PATH}.variables"
    for i, v in enumerate(state.variables):
        if not isinstance(v, np.ndarray) or v.dtype.kind not in "iuf":
            raise ValueError(
                f"{where}[{i}] should be a numeric array, got {_describe(v)}."
            )
        if v.dtype.kind == "f" and not np.isfinite(v).all():
            raise ValueError(f"{where}[{i}] holds non-finite values.")
        if v.dtype.kind in "iu" and (v < 0).any():
            raise ValueError(f"{where}[{i}] holds a negative count.")


def variable_names(shapes):
    """The names of the variables an optimizer is built on, for ``shapes``.

    ``kernel`` or ``bias`` by rank, as the ``Dense`` layers' are, so an
    optimizer's name-based rules see familiar names, numbered in order: each
    slot variable's name (``kernel_0_momentum``) then tells its parameter.
    A single flat vector (:meth:`KerasOptimizer.layout`) is
    :data:`FLAT_NAME`.
    """
    if len(shapes) == 1 and len(shapes[0]) == 1:
        return [FLAT_NAME]
    return [
        f"{'kernel' if len(shape) >= 2 else 'bias'}_{i}"
        for i, shape in enumerate(shapes)
    ]


#: The name of the flat variable an element-wise optimizer's record is built on.
FLAT_NAME = "parameters"


def build_optimizer(solver, shapes, dtype):
    """A fresh optimizer built on new Keras variables of ``shapes`` and ``dtype``.

    The variables are named by :func:`variable_names`. Built in the backend's
    compute scope (on JAX, float64 variables need it).
    """
    keras = import_keras()

    from ._backends import current

    with current().compute_scope(dtype):
        variables = [
            keras.Variable(np.zeros(shape, dtype), name=name)
            for shape, name in zip(shapes, variable_names(shapes), strict=True)
        ]
        optimizer = solver.new_optimizer()
        optimizer.build(variables)
    return optimizer, variables


def _initial_values(solver, shapes, dtype):
    """A fresh optimizer's variable values, read-only (every fit shares them).

    The optimizer then applies one step of zero gradients to its variables:
    one that cannot update weights of this dtype on this backend is refused
    here, naming the solver, before any training.
    """
    from ._backends import current, name

    optimizer, variables = build_optimizer(solver, shapes, dtype)
    try:
        values = []
        for variable in optimizer.variables:
            value = np.array(current().to_numpy(variable.value))
            value.flags.writeable = False
            values.append(value)
        with current().compute_scope(dtype):
            optimizer.apply([np.zeros(v.shape, dtype) for v in variables], variables)
    except Exception as exc:
        problem = f"{type(exc).__name__}: {exc}"
        raise ValueError(
            f"solver={solver.label} cannot train {dtype} weights on {name()}: "
            f"Keras' optimizer failed to apply one update ({problem[:300]})."
        ) from exc
    return tuple(values)


#: Building an optimizer costs tens of milliseconds, so the initial state of
#: each (backend, optimizer key, parameter shapes, dtype) is computed once per
#: process.
_INITIAL = LRUCache(16)


class SlotLayout:
    """Where an optimizer's recorded variables are among its program's.

    The record holds the variables of the optimizer built on
    :meth:`KerasOptimizer.layout` (for an element-wise optimizer, one flat
    vector: one slot variable per kind of slot, such as ``m`` and ``v``), the
    program those of the same optimizer built on each parameter (one slot
    variable per kind and parameter). Keras names a slot variable
    ``<variable>_<kind>``; every other variable (``iteration``,
    ``learning_rate``, ...) is one of both.

    Parameters
    ----------
    sources : list of tuple
        For each recorded variable, ``(True, indices)`` for a slot split over
        the program's variables ``indices`` (one per parameter, in order), or
        ``(False, (index,))`` for a variable the program holds as it is.
    """

    def __init__(self, sources):
        self.sources = sources
        self.size = sum(len(indices) for _, indices in sources)

    @classmethod
    def derive(cls, recorded, program, shapes):
        """The layout between the ``recorded`` and ``program`` variables.

        A slot is told by its name; the other variables (whose names Keras
        may number, ``variable_1``) correspond in order.

        Parameters
        ----------
        recorded, program : list of keras.Variable
            The variables of the optimizer built on
            :meth:`KerasOptimizer.layout` and on ``shapes``.
        shapes : tuple of tuple of int
            The parameters' shapes.

        Returns
        -------
        SlotLayout or None
            None where the names or shapes do not line up as described.
        """
        names = variable_names(shapes)
        index = {v.name: j for j, v in enumerate(program)}
        shared = [
            j
            for j, v in enumerate(program)
            if not any(v.name.startswith(f"{n}_") for n in names)
        ]
        if len(index) != len(program):
            return None
        sources, next_shared = [], iter(shared)
        for variable in recorded:
            name = variable.name
            if name.startswith(FLAT_NAME + "_"):
                kind = name[len(FLAT_NAME) + 1 :]
                wanted = [f"{n}_{kind}" for n in names]
                if not all(w in index for w in wanted):
                    return None
                indices = tuple(index[w] for w in wanted)
                expected = [tuple(s) for s in shapes]
                sources.append((True, indices))
            else:
                indices = (next(next_shared, None),)
                if indices[0] is None:
                    return None
                expected = [tuple(variable.shape)]
                sources.append((False, indices))
            if [tuple(program[j].shape) for j in indices] != expected:
                return None
        covered = sorted(j for _, indices in sources for j in indices)
        if covered != list(range(len(program))):
            return None
        return cls(sources)

    @classmethod
    def identity(cls, n_variables):
        """The layout of an optimizer recorded as the program builds it."""
        return cls([(False, (j,)) for j in range(n_variables)])

    def to_program(self, values, unpack):
        """The recorded ``values`` as the program's variables' values.

        ``unpack`` splits a flat vector into tensors of the parameters' shapes.
        """
        out = [None] * self.size
        for value, (split, indices) in zip(values, self.sources, strict=True):
            parts = unpack(value) if split else [value]
            for j, part in zip(indices, parts, strict=True):
                out[j] = part
        return out

    def to_record(self, values, pack):
        """The program's variables' ``values`` as the record holds them.

        ``pack`` joins tensors of the parameters' shapes into a flat vector.
        """
        return tuple(
            pack([values[j] for j in indices]) if split else values[indices[0]]
            for split, indices in self.sources
        )


def program_optimizer(solver, shapes, dtype):
    """The optimizer a program trains with, for parameters of ``shapes``.

    Built on each parameter, with the :class:`SlotLayout` between its
    variables and the record's; for an element-wise optimizer whose slots
    cannot be told apart by name (a Keras version naming them otherwise),
    built on the record's flat layout instead, with the identity layout.

    Returns
    -------
    optimizer : keras.optimizers.Optimizer
    variables : list of keras.Variable
        The variables it is built on.
    slots : SlotLayout
    flat : bool
        Whether it is built on the flat parameter vector.
    """
    optimizer, variables = build_optimizer(solver, shapes, dtype)
    if solver.elementwise:
        recorded = build_optimizer(solver, solver.layout(shapes), dtype)
        slots = SlotLayout.derive(recorded[0].variables, optimizer.variables, shapes)
        if slots is None:
            optimizer, variables = recorded
            return optimizer, variables, _identity(optimizer), True
        return optimizer, variables, slots, False
    return optimizer, variables, _identity(optimizer), False


def _identity(optimizer):
    return SlotLayout.identity(len(optimizer.variables))


def join_parameters(parts):
    """Tensors joined into one flat vector (``keras.ops``)."""
    keras = import_keras()

    return keras.ops.concatenate([keras.ops.reshape(p, [-1]) for p in parts])


def split_parameters(flat, shapes):
    """A flat vector split into tensors of ``shapes`` (``keras.ops``)."""
    keras = import_keras()

    sizes = [int(np.prod(shape)) for shape in shapes]
    parts = keras.ops.split(flat, np.cumsum(sizes)[:-1].tolist())
    return [
        keras.ops.reshape(part, shape)
        for part, shape in zip(parts, shapes, strict=True)
    ]


class StatelessKerasOptimizer:
    """A Keras optimizer applied as a pure function, for one program.

    For backends whose Keras optimizers support ``stateless_apply`` (JAX):
    the optimizer's variables travel through the program as the solver state
    (:class:`~sk_keras_digits._state.OptimizerState`, in the program's
    layout: :class:`SlotLayout`), so the program holds no state, needs no
    lock, and is shared like a built-in solver's.

    Parameters
    ----------
    solver : KerasOptimizer
    shapes : tuple of tuple of int
        The parameters' shapes.
    dtype : str
        Their dtype.
    """

    stateful = False

    def __init__(self, solver, shapes, dtype):
        self.shapes = shapes
        self.optimizer, _, self.slots, self.flat = program_optimizer(
            solver, shapes, dtype
        )
        self.schedule = OptimizerLearningRate(self.optimizer, stateless=True)

    def start(self, params, state, unpack):
        """The recorded state in the program's layout."""
        return OptimizerState(tuple(self.slots.to_program(state.variables, unpack)))

    def finish(self, state, pack):
        """The program's state back in the record's layout."""
        return OptimizerState(self.slots.to_record(list(state.variables), pack))

    def update(self, params, grads, state, learning_rate, hyper):
        """One ``optimizer.stateless_apply`` step (lists of tensors in and out).

        ``learning_rate`` and ``hyper`` are unused: the optimizer has its own.
        """
        if self.flat:
            params, grads = [join_parameters(params)], [join_parameters(grads)]
        new_params, variables = self.optimizer.stateless_apply(
            list(state.variables), list(grads), list(params)
        )
        if self.flat:
            new_params = split_parameters(new_params[0], self.shapes)
        return list(new_params), OptimizerState(tuple(variables))
