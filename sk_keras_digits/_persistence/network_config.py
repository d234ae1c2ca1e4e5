"""Checking a Keras network configuration from a file before anything is built.

A model file's ``model.keras`` (see :mod:`.network_file`) holds the network's
architecture, as Keras' ``config.json``. Two checks run on it before Keras
allocates anything:

- :func:`check_dense_config`: for the default network the architecture
  follows from the parameters and the weights' shapes, so the file's
  configuration is only compared with them (and never used);
- :func:`variable_specs`: for a custom network, Keras deserializes the
  configuration inside a :class:`keras.StatelessScope`, where layers create
  their variables without allocating them, which gives the shapes and dtypes
  of every variable the network would hold, and the sizes of its layers'
  symbolic outputs. The caller compares the variables with the declared
  weights, and bounds the outputs, before building the network for real.

Importing this module does not import Keras; the functions do.
"""

import math
from typing import NamedTuple

from .._activations import KERAS_ACTIVATIONS
from .._backends import import_keras
from .._messages import short_repr
from .._random_states import random_states_kept
from .archive import LARGER_MAX_BYTES
from .errors import Refused
from .params_codec import NUMPY_SCALARS


def _policy_name(dtype):
    if isinstance(dtype, dict):
        return dtype.get("config", {}).get("name")
    return dtype


def check_dense_config(config, n_features_in, units, activation, out_activation, dtype):
    """Refuse a default-network configuration other than the expected one.

    Parameters
    ----------
    config : object
        The parsed ``config.json``.
    n_features_in : int
    units : list of int
        Units of the hidden layers and the output layer.
    activation, out_activation : str
        In MLP's names.
    dtype : str
        Dtype of the weights.
    """
    expected = [("InputLayer", [None, n_features_in], dtype)]
    for i, n in enumerate(units):
        name = out_activation if i == len(units) - 1 else activation
        expected.append(("Dense", n, KERAS_ACTIVATIONS[name], True, dtype))
    try:
        if config["class_name"] != "Functional":
            raise ValueError(f"a {config['class_name']!r} model")
        found = []
        for layer in config["config"]["layers"]:
            kind, options = layer["class_name"], layer["config"]
            if kind == "InputLayer":
                found.append((kind, options["batch_shape"], options["dtype"]))
            elif kind == "Dense":
                found.append(
                    (
                        kind,
                        options["units"],
                        options["activation"],
                        options["use_bias"],
                        _policy_name(options["dtype"]),
                    )
                )
            else:
                found.append((kind,))
    except (KeyError, TypeError, ValueError) as exc:
        raise Refused(
            f"model.keras: config.json is not the default network's architecture "
            f"({type(exc).__name__}: {str(exc)[:200]})."
        ) from exc
    if found != expected:
        raise Refused(
            "model.keras: config.json describes the layers "
            f"{str(found)[:500]}, but the parameters and weights give {expected}."
        )


#: Most layers a custom network's configuration may hold, nested models'
#: included: Keras rebuilds a ``Sequential`` model once per layer added, so
#: its deserialization time grows with the square of their number.
MAX_LAYERS = 200
#: The keys whose values are shapes (lists of ints and None, or lists of them).
_SHAPE_KEYS = {"shape", "batch_shape", "input_shape", "output_shape", "target_shape"}
#: The dtypes a NumPy or tensor value in a configuration may have.
_PLAIN_DTYPES = NUMPY_SCALARS | {"float16", "bfloat16"}


def check_config_bounds(config, max_elements):
    """Refuse a configuration whose deserialization could allocate much more
    than its file holds, before Keras reads it.

    Keras defers only variables (:func:`variable_specs`): a NumPy value of a
    sub-array dtype (``"(11585,11585)f8"``: a gigabyte from one JSON number),
    or a layer built for a huge input (a ``Normalization`` broadcasts its mean
    to it), allocate while the configuration is read. Each shape is bounded
    by ``max_elements`` (``max_bytes`` in float64 values), NumPy values by
    plain dtypes (their JSON holds every element), and the layers by
    :data:`MAX_LAYERS`.
    """
    layers = 0
    stack = [(config, "config.json")]
    while stack:
        node, where = stack.pop()
        if isinstance(node, list):
            stack.extend((item, where) for item in node)
            continue
        if not isinstance(node, dict):
            continue
        if node.get("class_name") in ("__numpy__", "__tensor__"):
            dtype = (node.get("config") or {}).get("dtype")
            if not (isinstance(dtype, str) and dtype in _PLAIN_DTYPES):
                raise Refused(
                    f"{where} holds a value of dtype {short_repr(dtype)}; a "
                    f"network's values have one of the dtypes {sorted(_PLAIN_DTYPES)}."
                )
        for key, value in node.items():
            if key in _SHAPE_KEYS and isinstance(value, list):
                for shape in _shapes(value):
                    if math.prod(n for n in shape if isinstance(n, int)) > max_elements:
                        raise Refused(
                            f"{where} declares the {key} {short_repr(shape)}: "
                            f"more than {max_elements} values per sample, the "
                            f"most max_bytes allows. {LARGER_MAX_BYTES}."
                        )
            if key == "layers" and isinstance(value, list):
                layers += len(value)
                if layers > MAX_LAYERS:
                    raise Refused(
                        f"{where} holds more than {MAX_LAYERS} layers; rebuild "
                        "the network with your own code instead: "
                        "load(path, network=your_builder)."
                    )
            stack.append((value, where))


def _shapes(value):
    """The shapes in a shape entry: itself, or each of a list of them."""
    if all(n is None or isinstance(n, int) for n in value):
        return [value]
    return [
        shape for item in value if isinstance(item, list) for shape in _shapes(item)
    ]


def deserialize(config, custom_objects, safe_mode):
    """Deserialize a network configuration; refusals get a clear message."""
    import re

    keras = import_keras()

    try:
        # Initializers and layers without a seed draw one from Python's
        # global generator: the user's, kept as it was.
        with random_states_kept():
            return keras.saving.deserialize_keras_object(
                config, custom_objects=custom_objects, safe_mode=safe_mode
            )
    except Exception as exc:
        message = str(exc)
        unknown = re.search(r"Could not locate (\w+) '([^']+)'", message)
        if "lambda" in message.lower() and "safe_mode" in message:
            problem = (
                "its network holds Python code (a Lambda layer or a lambda), "
                "which Keras' safe mode refuses to load. Pass allow_unsafe=True "
                "only if you trust the file's source, or rebuild the network "
                "with your own code: load(path, network=your_builder)."
            )
        elif unknown:
            kind, name = unknown.groups()
            problem = (
                f"its network uses the custom {kind} {name!r}, which is not "
                "known here. Register it with "
                "keras.saving.register_keras_serializable, or pass "
                f"custom_objects={{{name!r}: ...}}, only if you trust the "
                "file's source; or rebuild the network with your own code: "
                "load(path, network=your_builder)."
            )
        else:
            problem = f"Keras cannot rebuild its network: {message[:500]}"
        raise Refused(problem) from exc


class NetworkSpecs(NamedTuple):
    """What a configuration's network would hold, read without allocating it.

    Attributes
    ----------
    trainable, non_trainable : list of (tuple of int, str)
        Shapes and dtypes of its variables.
    values_per_row : int
        The values its layers output per row of input, all together
        (:func:`~sk_keras_digits._network.activation_values`).
    """

    trainable: list
    non_trainable: list
    values_per_row: int


def variable_specs(config, custom_objects, safe_mode):
    """The variables and the layers' outputs a configuration would create.

    Nothing is allocated: the network is deserialized in a stateless scope,
    and its layers' outputs are symbolic.

    Returns
    -------
    NetworkSpecs
    """
    keras = import_keras()

    from .._fixes import unallocated_variables
    from .._network import activation_values

    with unallocated_variables():
        model = deserialize(config, custom_objects, safe_mode)
        if not isinstance(model, keras.Model):
            raise Refused(
                f"model.keras: config.json describes a {type(model).__name__}, "
                "not a keras.Model."
            )

        def specs(variables):
            return [(tuple(int(n) for n in v.shape), str(v.dtype)) for v in variables]

        return NetworkSpecs(
            specs(model.trainable_variables),
            specs(model.non_trainable_variables),
            activation_values(model),
        )


def output_activation(config):
    """The activation named by the output layer of a Sequential or Functional
    configuration, or None where it cannot be told."""
    try:
        options = config["config"]
        layers = options["layers"]
        if config["class_name"] == "Sequential":
            last = layers[-1]
        else:
            outputs = options["output_layers"]
            if isinstance(outputs[0], list):
                if len(outputs) != 1:
                    return None
                outputs = outputs[0]
            (last,) = [layer for layer in layers if layer["name"] == outputs[0]]
        if last["class_name"] == "Dense":
            return last["config"]["activation"]
        if last["class_name"] == "Activation":
            return last["config"]["activation"]
    except (KeyError, TypeError, ValueError, IndexError):
        return None
    return None
