"""The network file, ``model.keras``: the architecture in Keras' format.

A model file's ``model.keras`` member is a zip archive holding the network's
``config.json`` and ``metadata.json`` (the weights are in ``state.npz``).
For the default network the configuration is only compared with the one the
parameters and weights give (:func:`check_dense`); a custom network is
rebuilt from it as a :class:`SavedNetwork` (:func:`rebuild_network`), or from
the caller's builder (:func:`check_builder`), once the variables it would
create match the saved weights.
"""

import copy
import json

import numpy as np

from .._activations import KERAS_ACTIVATIONS
from .._backends import import_keras
from .archive import (
    LARGER_MAX_BYTES,
    MEMBER_OVERHEAD,
    check_names,
    open_zip,
    zip_bytes,
)
from .errors import Refused
from .invariants import describe_targets
from .network_config import (
    check_config_bounds,
    check_dense_config,
    output_activation,
    variable_specs,
)

NETWORK = "model.keras"
_CONFIG = "config.json"
_METADATA = "metadata.json"
# Most bytes of a custom network's config.json and of metadata.json (a
# default network's config.json is allowed a few KiB a layer).
_CONFIG_LIMIT = 4 * 2**20
_METADATA_LIMIT = 2**16


class SavedNetwork:
    """A custom architecture read from a model file, usable as ``network``.

    :func:`load` sets a loaded estimator's ``network`` parameter to a
    ``SavedNetwork`` when the saved estimator had a custom ``network`` (a
    function, which a file does not hold) and the caller passes no
    ``network=``. It rebuilds the saved Keras architecture from its
    configuration, so the loaded estimator predicts and can be refitted.

    Parameters
    ----------
    config : dict
        The network's Keras serialization
        (:func:`keras.saving.serialize_keras_object`).
    custom_objects : dict, default=None
        Classes and functions the configuration may name, as in
        :func:`keras.saving.load_model`.
    safe_mode : bool, default=True
        Keras' safe mode for rebuilding; False only where the caller allowed
        unsafe content (``load(..., allow_unsafe=True)``).
    """

    def __init__(self, config, custom_objects=None, safe_mode=True):
        self.config = config
        self.custom_objects = custom_objects
        self.safe_mode = safe_mode

    def __call__(self, n_features_in, n_outputs, output_activation):
        """Build the saved architecture (the arguments are checked by the caller).

        Parameters
        ----------
        n_features_in, n_outputs : int
            Input and output widths the estimator expects.
        output_activation : str
            Keras' name of the output activation.

        Returns
        -------
        model : keras.Model
            The architecture, freshly initialised.
        """
        keras = import_keras()

        return keras.saving.deserialize_keras_object(
            copy.deepcopy(self.config),
            custom_objects=self.custom_objects,
            safe_mode=self.safe_mode,
        )

    def __eq__(self, other):
        if not isinstance(other, SavedNetwork):
            return NotImplemented
        return (self.config, self.custom_objects, self.safe_mode) == (
            other.config,
            other.custom_objects,
            other.safe_mode,
        )

    def __hash__(self):
        return hash(json.dumps(self.config, sort_keys=True, default=repr))

    def __repr__(self):
        name = self.config.get("config", {}).get("name", "?")
        return f"SavedNetwork({self.config.get('class_name')} {name!r})"


# ---------------------------------------------------------------------- save
def network_bytes(estimator):
    """The fitted network's architecture as a ``.keras`` archive without weights."""
    keras = import_keras()

    from .._fixes import serialization_without_tensorflow

    try:
        with serialization_without_tensorflow():
            config = keras.saving.serialize_keras_object(estimator.model_)
        config_bytes = json.dumps(config).encode()
    except Exception as exc:
        raise ValueError(
            f"Cannot save the network of this {type(estimator).__name__} in "
            f"Keras' format: {exc}. Make its custom layers serializable "
            "(keras.saving.register_keras_serializable and get_config), or "
            "use joblib.dump."
        ) from exc
    metadata = {"keras_version": keras.__version__, "weights": "state.npz"}
    return zip_bytes(
        [(_CONFIG, config_bytes), (_METADATA, json.dumps(metadata).encode())]
    )


# ---------------------------------------------------------------------- load
def read_config(archive, budget, limit, legacy=False):
    """The network's ``config.json`` from ``model.keras``, bounded.

    Parameters
    ----------
    archive : zipfile.ZipFile
        The model file.
    budget : Budget
    limit : int
        Most bytes of ``config.json``.
    legacy : bool, default=False
        Whether the file is of format 1, which stored Keras' whole file (its
        weights are never read).

    Returns
    -------
    config : object
    """
    member_limit = limit + _METADATA_LIMIT + 4 * MEMBER_OVERHEAD
    if legacy:
        member_limit = budget.left
    data = budget.read(archive, NETWORK, member_limit, f"member '{NETWORK}'")
    with open_zip(data, NETWORK) as inner:
        optional = ["model.weights.h5"] if legacy else []
        check_names(inner, [_CONFIG, _METADATA], NETWORK, optional=optional)
        budget.read_json(inner, _METADATA, _METADATA_LIMIT, f"{NETWORK}: {_METADATA}")
        return budget.read_json(inner, _CONFIG, limit, f"{NETWORK}: {_CONFIG}")


def check_dense(archive, budget, record, legacy=False):
    """Compare the file's architecture with the one the record defines.

    Parameters
    ----------
    archive : zipfile.ZipFile
    budget : Budget
    record : FittedEstimator
        Of an estimator with the default network.
    legacy : bool, default=False
    """
    state = record.state
    coefs = state.weights.coefs
    units = [c.shape[1] for c in coefs]
    config = read_config(archive, budget, 4096 + 2048 * len(units), legacy)
    check_dense_config(
        config,
        record.n_features_in,
        units,
        record.params["activation"],
        state.labels.out_activation,
        coefs[0].dtype.name,
    )


def saved_network(archive, budget, record, custom_objects, safe_mode, legacy=False):
    """The file's architecture as a :class:`SavedNetwork`, checked unbuilt.

    The variables the configuration would create must be the record's
    weights, and its output layer must apply the targets' activation (in
    Keras' names: ``"softmax"`` or ``"sigmoid"`` for a classifier's,
    ``"linear"`` or ``"exponential"`` for a regressor's loss).
    """
    config = read_config(archive, budget, _CONFIG_LIMIT, legacy)
    check_config_bounds(config, max(budget.max_bytes // 8, 1))
    state = record.state
    weights = state.weights
    specs = variable_specs(copy.deepcopy(config), custom_objects, safe_mode)
    trainable, non_trainable = specs.trainable, specs.non_trainable
    saved = [(p.shape, p.dtype.name) for p in weights.params]
    saved_buffers = [(b.shape, b.dtype.name) for b in weights.buffers]
    # Integer state (a seed generator's) is int64 on TensorFlow and uint32 on
    # JAX: a file saved on either backend loads on the other.
    if trainable != saved or _integers(non_trainable) != _integers(saved_buffers):
        raise Refused(
            f"{NETWORK}: the architecture's variables (trainable "
            f"{str(trainable)[:300]}, non-trainable {str(non_trainable)[:200]}) "
            f"differ from the weights in state.npz ({str(saved)[:300]}, "
            f"{str(saved_buffers)[:200]})."
        )
    # A prediction holds one row's outputs at the least (_inference.chunk_rows).
    if specs.values_per_row > budget.max_bytes // 8:
        raise Refused(
            f"{NETWORK}: the network's layers output {specs.values_per_row} "
            "values per row of input, which a prediction holds in memory: more "
            f"than the {budget.max_bytes // 8} (in float64) that max_bytes allows. "
            f"{LARGER_MAX_BYTES}."
        )
    activation = output_activation(config)
    expected = KERAS_ACTIVATIONS[state.labels.out_activation]
    if activation is not None and activation != expected:
        raise Refused(
            f"{NETWORK}: the network's output layer applies {activation!r}, "
            f"but {describe_targets(state.labels)} need {expected!r}."
        )
    return SavedNetwork(config, custom_objects=custom_objects, safe_mode=safe_mode)


def _integers(specs):
    """Variable specs with every integer dtype read as one kind."""
    return [
        (shape, "integer" if np.dtype(dtype).kind in "iu" else dtype)
        for shape, dtype in specs
    ]


def build_checked(estimator):
    """Build the restored estimator's network and model, refusing a failure."""
    try:
        estimator.model_  # noqa: B018  (builds the network with its weights)
    except Exception as exc:
        raise Refused(
            f"{NETWORK}: the network cannot be rebuilt for "
            f"{estimator.n_features_in_} inputs and {estimator.n_outputs_} "
            f"outputs ({type(exc).__name__}: {str(exc)[:300]})."
        ) from exc


def check_builder(path, record, network):
    """Refuse a caller's ``network`` that does not build the saved weights' shapes.

    Parameters
    ----------
    path : str
        The file, for messages.
    record : FittedEstimator
    network : callable
        The caller's builder.
    """
    from .._network import CustomNetwork

    state = record.state
    weights = state.weights
    n_outputs = state.labels.n_outputs
    built = CustomNetwork(
        network,
        record.n_features_in,
        n_outputs,
        state.labels.out_activation,
        weights.params[0].dtype.name,
    )
    try:
        built.build(0)
    except Exception as exc:
        raise ValueError(
            f"network={network!r} could not build the saved network "
            f"({record.n_features_in} inputs, {n_outputs} outputs): {exc}"
        ) from exc
    model = built.model
    shapes = [tuple(v.shape) for v in model.trainable_variables]
    saved = [p.shape for p in weights.params]
    buffers = [tuple(v.shape) for v in model.non_trainable_variables]
    saved_buffers = [b.shape for b in weights.buffers]
    if shapes != saved or buffers != saved_buffers:
        raise ValueError(
            f"network={network!r} builds trainable weights of shapes {shapes} "
            f"(non-trainable {buffers}), but '{path}' holds weights of shapes "
            f"{saved} (non-trainable {saved_buffers})."
        )
