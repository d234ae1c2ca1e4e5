"""The estimators measured: ours, MLPClassifier and the Keras peers.

The peers train the tutorial's network in Keras 3: the tutorial's plain Keras
code, ``keras.wrappers.SKLearnClassifier`` and scikeras' ``KerasClassifier``.
The first two run on the backend Keras runs on; scikeras needs TensorFlow
(:func:`active_peers` leaves it out on JAX). :func:`core_loop_fit` is the
reference for the accuracy: the estimator's training written as a plain
per-batch Keras loop, on either backend.

Importing this module imports neither Keras nor a backend.
"""

import contextlib
import os
import sys

from settings import PEER_BACKENDS, TUTORIAL

from sk_keras_digits.tutorial import tutorial_classifier

#: The Keras peers, in the order of the tables.
KERAS_PEERS = ("keras", "sklearn_wrapper", "scikeras")


def current_backend():
    """The backend Keras runs on, or will run on once imported.

    Returns
    -------
    name : str
        ``keras.backend.backend()`` once Keras is imported, else
        ``KERAS_BACKEND`` (``run.py`` sets it from ``--backend``), else
        ``"tensorflow"``.
    """
    keras = sys.modules.get("keras")
    if keras is not None:
        return keras.backend.backend()
    return os.environ.get("KERAS_BACKEND") or "tensorflow"


def skipped_peers(backend=None):
    """The Keras peers that cannot run on a backend, with the reason.

    Parameters
    ----------
    backend : str, default=None
        None: :func:`current_backend`.

    Returns
    -------
    skipped : dict
        Peer key -> a sentence saying why it is left out.
    """
    backend = backend or current_backend()
    return {
        name: note
        for name, (needed, note) in PEER_BACKENDS.items()
        if needed != backend
    }


def active_peers(peers, backend=None):
    """The Keras peers a benchmark measures.

    Parameters
    ----------
    peers : bool or iterable of str
        True: every peer the backend can run (:data:`KERAS_PEERS` less
        :func:`skipped_peers`); False: none; else the peer keys given.
    backend : str, default=None
        None: :func:`current_backend`.

    Returns
    -------
    names : tuple of str
        In the order of :data:`KERAS_PEERS`.
    """
    if peers is True:
        skipped = skipped_peers(backend)
        return tuple(name for name in KERAS_PEERS if name not in skipped)
    if not peers:
        return ()
    chosen = set(peers)
    return tuple(name for name in KERAS_PEERS if name in chosen)


def ours(**params):
    """``KerasDigitClassifier`` in the tutorial configuration."""
    return tutorial_classifier("KerasDigitClassifier", **params)


def mlp(**params):
    """``MLPClassifier`` in the tutorial configuration."""
    return tutorial_classifier("MLPClassifier", **params)


# ---------------------------------------------------------- peers (Keras)
def tutorial_network(
    n_features, n_outputs, hidden=(15,), seed=None, optimizer=None, loss=None
):
    """The tutorial's Keras network, compiled as in the tutorial.

    Dense(15, sigmoid), Dense(n_outputs, softmax), SGD(learning_rate=0.1,
    momentum=0.9), categorical cross-entropy (or ``loss``), in Keras' default
    float32. With ``n_outputs=1`` (scikeras' binary targets), a sigmoid output
    and binary cross-entropy. A ``seed`` seeds the kernel initialisers (no
    global seeding).
    """
    import keras

    def kernel_init(i):
        return keras.initializers.GlorotUniform(
            seed=None if seed is None else seed * 100 + i
        )

    inputs = keras.Input((n_features,))
    h = inputs
    for i, units in enumerate(hidden):
        h = keras.layers.Dense(
            units, activation="sigmoid", kernel_initializer=kernel_init(i)
        )(h)
    binary = n_outputs == 1
    outputs = keras.layers.Dense(
        n_outputs,
        activation="sigmoid" if binary else "softmax",
        kernel_initializer=kernel_init(len(hidden)),
    )(h)
    model = keras.Model(inputs, outputs)
    if loss is None:
        loss = "binary_crossentropy" if binary else "categorical_crossentropy"
    model.compile(
        loss=loss,
        optimizer=optimizer or keras.optimizers.SGD(learning_rate=0.1, momentum=0.9),
    )
    return model


def keras_fit(X, Y, seed=None):
    """The tutorial's plain Keras code: build, compile, ``model.fit``."""
    model = tutorial_network(X.shape[1], Y.shape[1], seed=seed)
    model.fit(X, Y, batch_size=100, epochs=TUTORIAL["max_iter"], verbose=0)
    return model


def sklearn_wrapper_model(X, y, hidden=(15,)):
    """Model callable of ``keras.wrappers.SKLearnClassifier`` (``y`` one-hot)."""
    return tutorial_network(X.shape[1], y.shape[1], hidden=hidden)


def scikeras_model(hidden_layer_sizes=(15,), meta=None, compile_kwargs=None):
    """Model callable of scikeras' ``KerasClassifier``.

    As in scikeras' own MLPClassifier example: scikeras passes the labels as
    class indices, so a multiclass target gets sparse categorical
    cross-entropy (the tutorial's loss on one-hot labels) and a binary target
    one sigmoid output with binary cross-entropy.
    """
    binary = meta["target_type_"] == "binary"
    return tutorial_network(
        meta["n_features_in_"],
        1 if binary else meta["n_classes_"],
        hidden=hidden_layer_sizes,
        optimizer=compile_kwargs["optimizer"],
        loss=None if binary else "sparse_categorical_crossentropy",
    )


def sklearn_wrapper(tutorial=True):
    """``keras.wrappers.SKLearnClassifier`` on the tutorial's network.

    With ``tutorial=False``, Keras' default fit settings (1 epoch, batches of
    32), as for ``check_estimator``.
    """
    from keras.wrappers import SKLearnClassifier

    fit_kwargs = {"verbose": 0}
    if tutorial:
        fit_kwargs.update(batch_size=100, epochs=TUTORIAL["max_iter"])
    return SKLearnClassifier(model=sklearn_wrapper_model, fit_kwargs=fit_kwargs)


def scikeras(tutorial=True):
    """scikeras' ``KerasClassifier`` on the tutorial's network.

    With ``tutorial=False``, scikeras' default fit settings (1 epoch, batches
    of 32), as for ``check_estimator``.
    """
    import keras
    from scikeras.wrappers import KerasClassifier

    fit = {"epochs": TUTORIAL["max_iter"], "batch_size": 100} if tutorial else {}
    return KerasClassifier(
        model=scikeras_model,
        hidden_layer_sizes=(15,),
        optimizer=keras.optimizers.SGD,
        optimizer__learning_rate=0.1,
        optimizer__momentum=0.9,
        verbose=0,
        **fit,
    )


def quiet_peers():
    """Silence the Python logging of TensorFlow, Keras and scikeras.

    Their warnings are silenced around each benchmark by ``run``.
    """
    import logging

    for name in ("tensorflow", "absl", "keras", "scikeras", "h5py"):
        logging.getLogger(name).setLevel(logging.ERROR)


def keras_init_network(n_features_in, n_outputs, output_activation):
    """The tutorial's network with Keras' default initialisers, for ``network=``.

    Glorot-uniform kernels and zero biases, as plain Keras starts from;
    ``KerasDigitClassifier``'s default network starts from MLPClassifier's
    initialisation instead.
    """
    import keras

    inputs = keras.Input((n_features_in,))
    hidden = keras.layers.Dense(15, activation="sigmoid")(inputs)
    outputs = keras.layers.Dense(n_outputs, activation=output_activation)(hidden)
    return keras.Model(inputs, outputs)


def mlp_initial_weights(layer_units, rng):
    """Glorot-uniform weights drawn as MLPClassifier draws them (logistic).

    Per layer, a kernel then a bias, each uniform in +- sqrt(2 / (fan_in +
    fan_out)), from ``rng`` in MLPClassifier's order: a given seed starts
    ``KerasDigitClassifier``, ``MLPClassifier`` and this loop from the same
    weights.
    """
    import numpy as np

    weights = []
    for fan_in, fan_out in zip(layer_units[:-1], layer_units[1:], strict=True):
        bound = np.sqrt(2.0 / (fan_in + fan_out))
        weights.append(rng.uniform(-bound, bound, (fan_in, fan_out)))
        weights.append(rng.uniform(-bound, bound, fan_out))
    return weights


def float64_scope():
    """Around Keras work in float64: ``jax.enable_x64`` on JAX, else nothing.

    JAX computes every float64 array in float32 outside that scope (a
    context of the calling thread: JAX's global configuration is unchanged).
    """
    if current_backend() == "jax":
        import jax

        return jax.enable_x64(True)
    return contextlib.nullcontext()


def _penalized_loss(kernels, proba, Yb):
    """Categorical cross-entropy plus MLPClassifier's L2 term, as the estimator."""
    from keras import losses, ops

    loss = ops.mean(losses.categorical_crossentropy(Yb, proba))
    penalty = sum(ops.sum(ops.square(w)) for w in kernels)
    n_samples = ops.cast(ops.shape(Yb)[0], "float64")
    return loss + 0.5 * TUTORIAL["alpha"] * penalty / n_samples


def _train_tensorflow(model, optimizer, batches):
    """One ``tf.function`` step per batch, gradients by ``tf.GradientTape``."""
    import tensorflow as tf

    kernels = [w for w in model.trainable_variables if len(w.shape) == 2]

    @tf.function
    def step(xb, yb):
        with tf.GradientTape() as tape:
            proba = model(xb, training=True)
            loss = _penalized_loss(kernels, proba, yb)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))

    for xb, yb in batches:
        step(xb, yb)


def _train_jax(model, optimizer, batches):
    """One ``jax.jit`` step per batch: ``jax.grad`` of the stateless model.

    Keras' stateless API on JAX: ``model.stateless_call`` and
    ``optimizer.stateless_apply`` on the variables' values, assigned back to
    the model once trained.
    """
    import jax

    optimizer.build(model.trainable_variables)
    kernel_index = [
        i for i, w in enumerate(model.trainable_variables) if len(w.shape) == 2
    ]

    def loss_fn(trainable, non_trainable, xb, yb):
        proba, _ = model.stateless_call(trainable, non_trainable, xb, training=True)
        kernels = [trainable[i] for i in kernel_index]
        return _penalized_loss(kernels, proba, yb)

    @jax.jit
    def step(trainable, non_trainable, optimizer_vars, xb, yb):
        grads = jax.grad(loss_fn)(trainable, non_trainable, xb, yb)
        return optimizer.stateless_apply(optimizer_vars, grads, trainable)

    trainable = [w.value for w in model.trainable_variables]
    non_trainable = [w.value for w in model.non_trainable_variables]
    optimizer_vars = [v.value for v in optimizer.variables]
    for xb, yb in batches:
        trainable, optimizer_vars = step(
            trainable, non_trainable, optimizer_vars, xb, yb
        )
    for variable, value in zip(model.trainable_variables, trainable, strict=True):
        variable.assign(value)


#: The training step of :func:`core_loop_fit`, by backend.
_CORE_TRAINERS = {"tensorflow": _train_tensorflow, "jax": _train_jax}


def core_loop_fit(X, y, seed):
    """The estimator's training, written as a plain per-batch Keras loop.

    The reference for the fast path's accuracy: the tutorial network in
    float64 from the same initial weights as the estimator (drawn as
    MLPClassifier draws them), then 50 epochs of shuffled batches of 100, each
    one compiled step of Keras' SGD (learning rate 0.1, Nesterov momentum 0.9)
    on the Keras model's categorical cross-entropy plus MLPClassifier's L2
    term. The step is written for the backend Keras runs on: a
    ``tf.function`` with ``tf.GradientTape`` on TensorFlow, a ``jax.jit`` of
    ``jax.grad`` over Keras' stateless API on JAX (in ``jax.enable_x64``).
    Returns the trained ``keras.Model`` (on JAX, predict with it inside
    :func:`float64_scope`, as :func:`core_loop_score` does).
    """
    import keras
    import numpy as np

    train = _CORE_TRAINERS[keras.backend.backend()]
    rng = np.random.RandomState(seed)
    with float64_scope():
        inputs = keras.Input((X.shape[1],), dtype="float64")
        hidden = keras.layers.Dense(15, activation="sigmoid", dtype="float64")(inputs)
        outputs = keras.layers.Dense(10, activation="softmax", dtype="float64")(hidden)
        model = keras.Model(inputs, outputs)
        model.set_weights(mlp_initial_weights([X.shape[1], 15, 10], rng))
        optimizer = keras.optimizers.SGD(learning_rate=0.1, momentum=0.9, nesterov=True)
        Y = np.eye(10)[y]

        def batches():
            batch = TUTORIAL["batch_size"]
            for _ in range(TUTORIAL["max_iter"]):
                order = rng.permutation(len(X))
                for start in range(0, len(X), batch):
                    index = order[start : start + batch]
                    yield X[index], Y[index]

        train(model, optimizer, batches())
    return model


def core_loop_score(X, y, X_test, y_test, seed):
    """Test accuracy of :func:`core_loop_fit`, predicting in float64.

    Returns
    -------
    accuracy : float
    """
    import numpy as np

    with float64_scope():
        model = core_loop_fit(X, y, seed)
        proba = model.predict(X_test, verbose=0)
    return float(np.mean(np.argmax(proba, axis=1) == y_test))
