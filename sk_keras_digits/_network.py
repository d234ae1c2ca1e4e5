"""Network builders: the Keras side of the estimator.

Two kinds of network train behind the estimators:

- :class:`DenseNetwork`, the default: MLP's architecture (dense layers, one
  hidden activation, the output activation of the targets' loss) built as
  Keras ``Dense`` layers. Its training program is written with dynamic layer
  widths, so one compiled loop serves every ``hidden_layer_sizes`` with the
  same depth.
- :class:`CustomNetwork`: any ``keras.Model`` returned by a user's builder,
  trained through ``Model.stateless_call``.

Both present the same small interface to the training programs
(:mod:`sk_keras_digits._backends`): ``trace_key``, ``param_shapes``,
``buffer_shapes``, ``penalized``, ``loss`` and ``forward``, a function of
tensors written with ``keras.ops`` (or Keras' ``stateless_call``), so it runs
on every backend.

Keras is imported where a Keras object is built or a program traced, not
with this module: a fit of the default network whose compiled program is read
from the persistent compilation cache (JAX) never imports it, and ``model_``
imports it when first built.
"""

import functools
import itertools
import json
import math

import numpy as np

from ._activations import KERAS_ACTIVATIONS
from ._backends import current, import_keras
from ._losses import loss_for
from ._memory import beyond_share
from ._state import Weights

#: Rows of the training data that probe a custom network's outputs at fit.
_PROBE_ROWS = 32

# Keys for models whose computation no config describes: never shared.
_UNIQUE = itertools.count()


class DenseNetwork:
    """MLP's network, with Keras' activations.

    Parameters
    ----------
    layer_units : list of int
        Units per layer, input and output included.
    activation : str
        Hidden activation, in MLP's names.
    out_activation : {"softmax", "logistic", "identity", "exp"}
        Output activation; it names the loss.
    dtype : {"float32", "float64"}
        Compute dtype.
    """

    def __init__(self, layer_units, activation, out_activation, dtype):
        self.layer_units = list(layer_units)
        self.activation = activation
        self.out_activation = out_activation
        self.dtype = dtype

    @property
    def compute_dtype(self):
        return self.dtype

    @property
    def loss(self):
        """The :class:`~sk_keras_digits._losses.Loss` of the output activation."""
        return loss_for(self.out_activation)

    #: Layer widths are unknown to the compiled program (one trace per depth).
    dynamic_shapes = True
    #: Each row's output and loss depend on that row alone, so rows of zero
    #: weight added to a batch change nothing: a program may pad the data.
    rows_independent = True

    def skeleton(self):
        """The network a compiled program traces: this one (it holds no state)."""
        return self

    @property
    def n_layers(self):
        return len(self.layer_units)

    @property
    def trace_key(self):
        # Layer widths are left out on purpose: the program is traced with
        # dynamic widths, so every hidden size of a grid search shares it.
        return (
            "dense",
            self.n_layers,
            self.activation,
            self.out_activation,
            self.dtype,
        )

    @property
    def param_shapes(self):
        """``(shape, dtype)`` of each parameter; widths are unknown (None)."""
        shapes = []
        for _ in range(self.n_layers - 1):
            shapes += [((None, None), self.dtype), ((None,), self.dtype)]
        return shapes

    @property
    def buffer_shapes(self):
        return []

    @property
    def penalized(self):
        """Indices of the parameters under the L2 penalty: the kernels."""
        return list(range(0, 2 * (self.n_layers - 1), 2))

    def initial_weights(self, random_state):
        """Draw initial weights exactly as MLP does (Glorot uniform).

        The draws come from ``random_state`` in MLP's order, so a
        given ``random_state`` starts both estimators from the same weights.
        """
        factor = 2.0 if self.activation == "logistic" else 6.0
        params = []
        for fan_in, fan_out in zip(
            self.layer_units[:-1], self.layer_units[1:], strict=True
        ):
            bound = np.sqrt(factor / (fan_in + fan_out))
            coef = random_state.uniform(-bound, bound, (fan_in, fan_out))
            intercept = random_state.uniform(-bound, bound, fan_out)
            params += [coef.astype(self.dtype), intercept.astype(self.dtype)]
        return Weights(tuple(params), ())

    def forward(self, params, buffers, x, training):
        """Outputs for ``x``: ``Dense`` layers' arithmetic on given weights."""
        return self._output_activation()(self._logits(params, x)), buffers, []

    def sample_losses(self, params, buffers, x, y):
        """Each sample's loss, the buffers and the layers' losses (none).

        The loss's gradient at the output layer's pre-activation is MLP's
        error, ``outputs - y``
        (:meth:`~sk_keras_digits._losses.Loss.per_sample_of_logits`).
        """
        losses = self.loss.per_sample_of_logits(
            self._logits(params, x), y, self._output_activation()
        )
        return losses, buffers, []

    def _output_activation(self):
        return current().activation(KERAS_ACTIVATIONS[self.out_activation])

    def _logits(self, params, x):
        """The output layer's pre-activation for ``x``."""
        backend = current()
        hidden = backend.activation(KERAS_ACTIVATIONS[self.activation])
        h = x
        for i in range(self.n_layers - 1):
            if i:
                h = hidden(h)
            h = backend.dense_product(h, params[2 * i]) + params[2 * i + 1]
        return h

    def build_model(self, weights):
        """Return the ``keras.Model`` of this network holding ``weights``."""
        keras = import_keras()

        from ._fixes import network_build_scope

        with network_build_scope(0, self.dtype):
            inputs = keras.Input(shape=(self.layer_units[0],), dtype=self.dtype)
            h = inputs
            # Built with constant initial values, the weights being set next:
            # no random draw (a JAX PRNG implementation Keras does not support,
            # such as "rbg", could not make one); the layers then name Keras'
            # default initializers, as a Dense layer built by a user would.
            constant = dict(kernel_initializer="zeros", bias_initializer="zeros")
            for i, units in enumerate(self.layer_units[1:-1], start=1):
                h = keras.layers.Dense(
                    units,
                    activation=KERAS_ACTIVATIONS[self.activation],
                    name=f"hidden_{i}",
                    **constant,
                )(h)
            outputs = keras.layers.Dense(
                self.layer_units[-1],
                activation=KERAS_ACTIVATIONS[self.out_activation],
                name="output",
                **constant,
            )(h)
            model = keras.Model(inputs, outputs, name="mlp")
            model.set_weights(list(weights.params))
            for layer in model.layers[1:]:
                layer.kernel_initializer = keras.initializers.GlorotUniform()
        return model


class CustomNetwork:
    """A user's Keras architecture, trained through ``Model.stateless_call``.

    Parameters
    ----------
    builder : callable
        ``builder(n_features_in, n_outputs, output_activation)`` returning an
        uncompiled ``keras.Model`` with ``n_outputs`` outputs
        (``output_activation`` is Keras' name of the activation the last
        layer must apply: ``"softmax"``, ``"sigmoid"``, ``"linear"`` or
        ``"exponential"``).
    n_features, n_outputs : int
        Input width and output width.
    out_activation : {"softmax", "logistic", "identity", "exp"}
        Output activation, in MLP's names; it names the loss.
    dtype : {"float32", "float64"}
        Default dtype of layers that do not set their own.
    """

    def __init__(self, builder, n_features, n_outputs, out_activation, dtype):
        self.builder = builder
        #: The builder's parameters when it built this network (a searchable
        #: network object's ``get_params(deep=True)``; None for a function).
        self.builder_params = _builder_params(builder)
        self.n_features = n_features
        self.n_outputs = n_outputs
        self.out_activation = out_activation
        self.dtype = dtype
        self.model = None
        self.trace_key = None

    def built_by(self, builder):
        """Whether ``builder``, as it is now, is the one that built this network.

        False once the estimator's ``network`` is another object, or the same
        network object with other parameters (``set_params(network__units=4)``).
        """
        return builder is self.builder and _same_params(
            _builder_params(builder), self.builder_params
        )

    def build(self, seed):
        """Call the builder reproducibly and check what it returned.

        Sets ``model`` (the freshly built network) and ``trace_key``.
        """
        keras = import_keras()

        from ._fixes import network_build_scope

        # Building and the first symbolic call stay in the scope: a model
        # without an Input creates its variables there.
        with network_build_scope(seed, self.dtype):
            model = self.builder(
                self.n_features,
                self.n_outputs,
                KERAS_ACTIVATIONS[self.out_activation],
            )
            if not isinstance(model, keras.Model):
                raise TypeError(
                    "network must return a keras.Model, got "
                    f"{type(model).__name__} from {self.builder!r}."
                )
            if not model.built:
                model.build((None, self.n_features))
            if not model.trainable_variables:
                raise ValueError(
                    f"The network returned by {self.builder!r} has no trainable "
                    "weights: there is nothing to fit. Return a model with at "
                    "least one trainable layer (e.g. a keras.layers.Dense)."
                )
            _check_one_dtype(model, self.builder, self.dtype)
            try:
                spec = model.compute_output_spec(
                    keras.KerasTensor((None, self.n_features), dtype=self.dtype)
                )
            except Exception as exc:
                raise ValueError(
                    f"The network returned by {self.builder!r} cannot take inputs "
                    f"of shape (n_samples, {self.n_features}): {exc}"
                ) from exc
        if not hasattr(spec, "shape") or tuple(spec.shape[1:]) != (self.n_outputs,):
            shape = getattr(spec, "shape", type(spec).__name__)
            raise ValueError(
                f"The network returned by {self.builder!r} must output shape "
                f"(n_samples, {self.n_outputs}) for these targets, got {shape}."
            )
        self.model = model
        self.trace_key = ("custom", self.dtype, _structure_fingerprint(model))
        return model

    def check_outputs(self, X):
        """Refuse a network whose outputs do not fit its loss.

        The loss reads the outputs as its output activation makes them:
        softmax rows (multiclass), independent sigmoid probabilities (binary,
        multilabel), real values (squared error) or positive means (Poisson).
        A network that forgets the output activation, or applies it to a
        hidden layer, would train on garbage. Its freshly built outputs are
        probed on the first rows of ``X`` and on the same rows scaled up
        (where an unbounded output shows itself), unless the network refuses
        inputs out of X's range (an ``Embedding`` of X's integer values).
        """
        keras = import_keras()

        rows = np.asarray(X[:_PROBE_ROWS], dtype=self.dtype)
        # The probe holds its rows' outputs (no gradients): as a step of half.
        self.check_training_memory(
            len(rows), "Use a network whose layers output less per row."
        )
        with current().compute_scope(self.dtype):
            outputs = np.asarray(keras.ops.convert_to_numpy(self.model(rows)))
            try:
                scaled = np.concatenate([1e3 * rows, -1e3 * rows])
                scaled = np.asarray(keras.ops.convert_to_numpy(self.model(scaled)))
            except Exception:  # a network for inputs of a range (an Embedding)
                pass
            else:
                outputs = np.concatenate([outputs, scaled])
        outputs_dtype = outputs.dtype if outputs.dtype.kind == "f" else np.float64
        outputs = outputs.astype(np.float64).reshape(len(outputs), -1)
        tol = max(1e-6, 100 * float(np.finfo(outputs_dtype).eps))
        finite = np.isfinite(outputs).all(axis=1)
        if not finite[: len(rows)].all():
            raise ValueError(
                f"The network returned by {self.builder!r} outputs non-finite "
                "values for the first rows of X before any training. Check its "
                "layers (and scale X)."
            )
        problem = self.loss.output_problem(outputs[finite], tol)
        if problem is not None:
            expected = KERAS_ACTIVATIONS[self.out_activation]
            raise ValueError(
                f"The network returned by {self.builder!r} must output "
                f"{self.loss.outputs}, but it outputs {problem}. Its last layer "
                f"must apply activation={expected!r} (the builder receives it as "
                "output_activation), and no layer after it may change the "
                "values."
            )

    @property
    def compute_dtype(self):
        return self.model.trainable_variables[0].dtype

    @property
    def values_per_row(self):
        """The values one row of input makes the layers output, all together:
        what a prediction holds per row at most (:func:`activation_values`)."""
        return activation_values(self.model)

    def check_training_memory(self, rows, remedy, memory=None):
        """Refuse a training step over ``rows`` rows whose layers' outputs,
        kept for the gradient, and their gradients would take more than a
        quarter of the machine's ``memory`` (None: its physical memory).

        ``remedy`` says how to take fewer rows a step (a smaller
        ``batch_size``).
        """
        itemsize = np.dtype(self.compute_dtype).itemsize
        values = self.n_features + self.values_per_row
        needed = 2 * rows * values * itemsize
        memory = beyond_share(needed, memory)
        if memory is not None:
            raise ValueError(
                f"A training step of this network holds {rows} rows of "
                f"{values} values each (its input and its layers' outputs), "
                f"and their gradients: {needed / 1e9:.3g} GB, over a quarter "
                f"of this machine's memory ({memory / 1e9:.3g} GB). {remedy}"
            )

    @property
    def loss(self):
        """The :class:`~sk_keras_digits._losses.Loss` of the output activation."""
        return loss_for(self.out_activation)

    #: Variable shapes are part of the trace key, so the program knows them.
    dynamic_shapes = False
    #: A user's layers may mix rows (batch normalisation) or draw per row
    #: (dropout): batches are never padded.
    rows_independent = False

    def skeleton(self):
        """A separately built twin for a compiled program to trace.

        The program must not hold on to the model the estimator hands to the
        user as ``model_``, which the user may change.
        """
        twin = CustomNetwork(
            self.builder,
            self.n_features,
            self.n_outputs,
            self.out_activation,
            self.dtype,
        )
        twin.build(0)
        return twin

    @property
    def param_shapes(self):
        """``(shape, dtype)`` of each trainable variable."""
        return [(tuple(v.shape), v.dtype) for v in self.model.trainable_variables]

    @property
    def buffer_shapes(self):
        """``(shape, dtype)`` of each non-trainable variable."""
        return [(tuple(v.shape), v.dtype) for v in self.model.non_trainable_variables]

    @property
    def penalized(self):
        """Indices of the parameters under the L2 penalty: those of rank >= 2."""
        return [
            i for i, v in enumerate(self.model.trainable_variables) if len(v.shape) >= 2
        ]

    def initial_weights(self, random_state=None):
        """Initial values of the freshly built model's variables.

        ``random_state`` is unused: the model was initialised when it was
        built, under a seed drawn from it (:meth:`build`).
        """
        return variable_values(self.model)

    def forward(self, params, buffers, x, training):
        outputs, buffers, losses = self.model.stateless_call(
            params, buffers, x, training=training, return_losses=True
        )
        return outputs, buffers, losses

    def sample_losses(self, params, buffers, x, y):
        """Each sample's loss, the new buffers and the layers' added losses.

        The model applies its output activation itself, so the gradient
        flows through it (and through the loss's clipped logarithm).
        """
        outputs, buffers, losses = self.forward(params, buffers, x, True)
        return self.loss.per_sample(outputs, y), buffers, losses

    def build_model(self, weights):
        """Return the freshly built model holding ``weights``."""
        assign_variables(self.model, aligned_weights(self, weights))
        return self.model


def aligned_weights(network, weights):
    """``weights`` with each buffer in the dtype the network keeps it in.

    Backends keep a layer's integer state in different integer types (a
    ``Dropout`` seed generator's state is int64 on TensorFlow, uint32 on JAX),
    so weights saved on one backend are cast where they meet a network built
    on the other. Other buffers keep their dtype.
    """
    dtypes = [np.dtype(dtype) for _, dtype in network.buffer_shapes]
    buffers = tuple(
        np.asarray(b, dtype) if dtype.kind in "iu" and b.dtype != dtype else b
        for b, dtype in zip(weights.buffers, dtypes, strict=True)
    )
    return weights._replace(buffers=buffers)


def variable_values(model):
    """The values of ``model``'s variables, as :class:`Weights`."""
    to_numpy = current().to_numpy
    return Weights(
        tuple(to_numpy(v.value) for v in model.trainable_variables),
        tuple(to_numpy(v.value) for v in model.non_trainable_variables),
    )


def activation_values(model):
    """The values per row of input that ``model``'s layers output, summed.

    Each layer counts once, by its largest output (a layer called several
    times, as ``Sequential`` does while it builds, is not counted again); a
    dimension Keras does not know counts as 1. The sum bounds what a
    prediction holds per row, whatever order the backend computes in.

    Parameters
    ----------
    model : keras.Model
        A built model.

    Returns
    -------
    values : int
    """
    from ._fixes import layer_output_shapes

    return sum(
        max(
            (math.prod(n or 1 for n in shape[1:]) for shape in shapes),
            default=0,
        )
        for shapes in layer_output_shapes(model)
    )


def assign_variables(model, weights):
    """Set ``model``'s variables to ``weights`` (arrays or tensors)."""
    variables = model.trainable_variables
    with current().compute_scope(variables[0].dtype if variables else "float32"):
        _assign(model, weights)


def _assign(model, weights):
    for variable, value in zip(model.trainable_variables, weights.params, strict=True):
        variable.assign(value)
    for variable, value in zip(
        model.non_trainable_variables, weights.buffers, strict=True
    ):
        variable.assign(value)


def _builder_params(builder):
    """A network object's ``get_params(deep=True)``; None for a function."""
    get_params = getattr(builder, "get_params", None)
    return dict(get_params(deep=True)) if callable(get_params) else None


def _same_params(a, b):
    """Whether two parameter dicts hold the same values (objects by identity
    where they do not compare, arrays by their values)."""
    if a is None or b is None:
        return a is b
    if a.keys() != b.keys():
        return False
    for key, value in a.items():
        other = b[key]
        if value is other:
            continue
        try:
            if type(value) is not type(other) or not bool(np.all(value == other)):
                return False
        except Exception:  # values that do not compare: not the same
            return False
    return True


def _check_one_dtype(model, builder, dtype):
    """Refuse a network whose variables are not all of one dtype.

    The parameters train as one flat vector of one dtype; a layer given its
    own ``dtype=`` keeps its variables in that dtype while the others follow
    X's, and no solver can update them together.
    """
    for variable in model.variables:
        floating = "float" in str(variable.dtype)  # not a seed generator's state
        if floating and variable.dtype != dtype:
            raise ValueError(
                f"The network returned by {builder!r} keeps the variable "
                f"{variable.path!r} in {variable.dtype}, where X is {dtype}: every "
                "variable must be of X's dtype. Remove the layer's own dtype= "
                "(layers without one follow X's dtype), or give X in "
                f"{variable.dtype}."
            )


def _structure_fingerprint(model):
    """A key that is equal only for two models that compute the same function.

    A Functional or Sequential model made of Keras' own layers, activations,
    initializers, regularizers and constraints is described completely by its
    config, once the automatically numbered layer names are replaced by their
    position. Anything else cannot be proven equivalent from its config: a
    subclassed model (its own ``call``), a custom layer or a ``Lambda``, a
    Python function, lambda or closure used as an activation (the config names
    only the function, not what it closes over), or any object of the user's.
    Such a model gets a key of its own, so that it is never confused with
    another.
    """
    from ._fixes import serialization_without_tensorflow

    variables = tuple(
        (tuple(v.shape), str(v.dtype), bool(v.trainable)) for v in model.variables
    )
    unique = ("object", next(_UNIQUE), variables)
    if type(model).__name__ not in ("Functional", "Sequential") or not _keras_made(
        model
    ):
        return unique
    try:
        with serialization_without_tensorflow():
            config = model.get_config()
    except Exception:
        return unique
    if not _keras_config(config):
        return unique
    names = {model.name: "model"}
    # Sequential.layers leaves out the InputLayer, whose name is numbered too.
    for i, name in enumerate(_input_layer_names(config)):
        names.setdefault(name, f"input_{i}")
    for i, layer in enumerate(model.layers):
        names.setdefault(layer.name, f"layer_{i}")
        for variable in layer.weights:
            names.setdefault(variable.path, f"layer_{i}/{variable.name}")

    def rename(node):
        if isinstance(node, dict):
            return {k: rename(v) for k, v in node.items()}
        if isinstance(node, (list, tuple)):
            return [rename(v) for v in node]
        if isinstance(node, str):
            return names.get(node, node)
        return node

    text = json.dumps(rename(config), sort_keys=True, default=repr)
    return ("config", type(model).__name__, text, variables)


#: Keras classes whose config does not describe what they compute.
_OPAQUE_CLASSES = frozenset({"Lambda", "TFSMLayer", "TorchModuleWrapper", "JaxLayer"})
#: Modules whose objects a layer may hold without being opaque.
_PLAIN_MODULES = ("builtins", "inspect", "numpy", "keras.", "tensorflow", "jax")


def _is_keras(module):
    return isinstance(module, str) and module.startswith("keras.")


def _keras_made(model):
    """Whether every layer of ``model`` and everything it holds is Keras' own.

    Layers must be Keras' classes (not ``Lambda``), and every function or
    object a layer holds (an activation, an initializer, ...) must come from
    Keras: a user's function may close over values its name does not show.
    """
    keras = import_keras()

    pending = list(model.layers)
    seen = set()
    while pending:
        layer = pending.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        cls = type(layer)
        if not _is_keras(cls.__module__) or cls.__name__ in _OPAQUE_CLASSES:
            return False
        for value in vars(layer).values():
            items = value
            if isinstance(value, dict):
                items = list(value.values())
            if not isinstance(items, (list, tuple, set, frozenset)):
                items = [value]
            for item in items:
                if isinstance(item, keras.layers.Layer):
                    pending.append(item)
                elif not _plain(item):
                    return False
    return True


def _plain(value):
    """Whether ``value`` (held by a Keras layer) is Keras' own or plain data."""
    if callable(value) and not isinstance(value, type):
        module = getattr(value, "__module__", None)
        if module is not None and hasattr(value, "__code__"):
            return _is_keras(module)  # a function: Keras' own only
        if isinstance(value, functools.partial):
            return _plain(value.func)
    return type(value).__module__.startswith(_PLAIN_MODULES)


def _keras_config(node):
    """Whether every object serialised in a config is one of Keras' classes."""
    if isinstance(node, dict):
        if "class_name" in node and node["class_name"] != "__keras_tensor__":
            # (A ``__keras_tensor__`` is a Functional model's link between
            # layers, not an object.)
            module = node.get("module")
            if (
                not (module == "keras" or _is_keras(module))
                or node.get("registered_name") is not None
                or node["class_name"] in _OPAQUE_CLASSES
                or node["class_name"] in ("function", "__lambda__")
            ):
                return False
        return all(_keras_config(v) for v in node.values())
    if isinstance(node, (list, tuple)):
        return all(_keras_config(v) for v in node)
    return True


def _input_layer_names(node):
    """Names of the InputLayer configs nested in a model config."""
    if isinstance(node, dict):
        if node.get("class_name") == "InputLayer":
            yield node.get("config", {}).get("name")
        for value in node.values():
            yield from _input_layer_names(value)
    elif isinstance(node, list):
        for value in node:
            yield from _input_layer_names(value)
