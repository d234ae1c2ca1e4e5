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
  of every variable the network would hold. The caller compares them with the
  declared weights before building the network for real.

Importing this module does not import Keras; the functions do.
"""

from .._activations import KERAS_ACTIVATIONS
from .._backends import import_keras
from .._random_states import random_states_kept
from .errors import Refused


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


def variable_specs(config, custom_objects, safe_mode):
    """Shapes and dtypes of the variables a configuration would create.

    Nothing is allocated: the network is deserialized in a stateless scope.

    Returns
    -------
    trainable, non_trainable : list of (tuple of int, str)
    """
    keras = import_keras()

    from .._fixes import unallocated_variables

    with unallocated_variables():
        model = deserialize(config, custom_objects, safe_mode)
        if not isinstance(model, keras.Model):
            raise Refused(
                f"model.keras: config.json describes a {type(model).__name__}, "
                "not a keras.Model."
            )

        def specs(variables):
            return [(tuple(int(n) for n in v.shape), str(v.dtype)) for v in variables]

        return specs(model.trainable_variables), specs(model.non_trainable_variables)


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
