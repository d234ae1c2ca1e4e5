"""The estimator: :class:`KerasDigitClassifier`."""

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import _check_partial_fit_first_call, unique_labels
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from . import _labels
from ._callbacks import EpochReporter
from ._inference import dense_forward

_STOCHASTIC_SOLVERS = ("sgd", "adam")

# Fitted state that holds Keras or TensorFlow objects: rebuilt on demand, never
# pickled.
_KERAS_STATE = ("_model", "_network")


class KerasDigitClassifier(ClassifierMixin, BaseEstimator):
    """A Keras network as a scikit-learn classifier, MLPClassifier's twin.

    The network is a Keras 3 model trained with TensorFlow. By default it is
    :class:`~sklearn.neural_network.MLPClassifier`'s multi-layer perceptron,
    with the same parameters, defaults, initialisation, loss, solvers and
    stopping rules; pass ``network`` to train any Keras architecture instead.
    Labels are encoded internally (one-hot for multiclass targets), so ``y``
    holds the user's own labels.

    Parameters
    ----------
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        The ith element is the number of neurons in the ith hidden layer.

    activation : {'identity', 'logistic', 'tanh', 'relu'}, default='relu'
        Activation of the hidden layers: Keras' ``linear``, ``sigmoid``,
        ``tanh`` and ``relu``.

    solver : {'lbfgs', 'sgd', 'adam'}, default='adam'
        The solver for weight optimisation. ``'sgd'`` and ``'adam'`` run in a
        compiled TensorFlow loop; ``'lbfgs'`` drives Keras-computed loss and
        gradients with SciPy's L-BFGS-B, as MLPClassifier does with its own.

    alpha : float, default=0.0001
        Strength of the L2 penalty on the kernels, divided by the (weighted)
        batch size when added to the loss.

    batch_size : int or 'auto', default='auto'
        Size of minibatches for the stochastic solvers; ``'auto'`` is
        ``min(200, n_samples)``. Unused by ``'lbfgs'``.

    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
        Learning-rate schedule of ``solver='sgd'``: constant; divided by
        ``(t + 1) ** power_t`` after each epoch, ``t`` being the number of
        samples seen; or divided by 5 each time ``n_iter_no_change`` epochs
        fail to improve by ``tol``.

    learning_rate_init : float, default=0.001
        Initial learning rate of ``'sgd'`` and ``'adam'``.

    power_t : float, default=0.5
        Exponent of the ``'invscaling'`` schedule.

    max_iter : int, default=200
        Most epochs (stochastic solvers) or iterations (``'lbfgs'``).

    shuffle : bool, default=True
        Whether to shuffle the samples at each epoch (stochastic solvers).

    random_state : int, RandomState instance or None, default=None
        Seeds the weight initialisation, the early-stopping split and the
        shuffling. An int gives bit-identical results on every fit. ``None``
        draws fresh entropy from the operating system (it never reads or
        advances NumPy's global random state).

    tol : float, default=1e-4
        Tolerance of the stopping rule: training stops when the loss (or the
        validation score, with early stopping) fails to improve by ``tol`` for
        ``n_iter_no_change`` consecutive epochs; for ``'lbfgs'``, the gradient
        tolerance.

    verbose : bool or int, default=False
        Whether to print progress messages to stdout.

    warm_start : bool, default=False
        Reuse the solution of the previous call to fit as initialisation.

    momentum : float, default=0.9
        Momentum of ``'sgd'``, in [0, 1].

    nesterovs_momentum : bool, default=True
        Whether ``'sgd'`` uses Nesterov's momentum.

    early_stopping : bool, default=False
        Set aside ``validation_fraction`` of the training data (stratified,
        except for multilabel targets) and stop when its accuracy fails to
        improve by ``tol`` for ``n_iter_no_change`` epochs; the best weights
        are kept. Stochastic solvers only.

    validation_fraction : float, default=0.1
        Proportion of the training data set aside for early stopping.

    beta_1 : float, default=0.9
        Decay rate of Adam's first moment estimates, in [0, 1).

    beta_2 : float, default=0.999
        Decay rate of Adam's second moment estimates, in [0, 1).

    epsilon : float, default=1e-8
        Adam's numerical stability term.

    n_iter_no_change : int, default=10
        Epochs without ``tol`` improvement before stopping (or, with
        ``learning_rate='adaptive'``, before dividing the learning rate).

    max_fun : int, default=15000
        Most loss evaluations of ``'lbfgs'``.

    network : callable, default=None
        A custom architecture: ``network(n_features_in, n_outputs,
        output_activation)`` returns an uncompiled ``keras.Model`` mapping
        ``(n_samples, n_features_in)`` inputs to ``(n_samples, n_outputs)``
        probabilities, its last layer applying ``output_activation``
        (``'softmax'`` or ``'sigmoid'``). It is called at fit under a scoped
        seed (from ``random_state``) and, for layers that do not set their
        own, the dtype of ``X``. ``hidden_layer_sizes`` and ``activation``
        are then unused; the solvers, ``alpha`` (on kernels of rank >= 2),
        stopping rules and everything else apply unchanged, and the layers'
        own regularisation losses are added. Use a module-level function (or
        ``functools.partial`` of one) so the estimator can be cloned and
        pickled.

    callbacks : list of keras.callbacks.Callback, default=None
        Keras callbacks, called at the start and end of training and of every
        epoch with ``logs`` holding ``loss``, ``learning_rate`` and, with
        early stopping, ``val_accuracy``. ``model.stop_training = True`` stops
        training. Batch-level hooks are not called: batches run inside the
        compiled loop.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels (for multilabel targets, the label indices).

    loss_ : float
        The loss at the end of training.

    best_loss_ : float or None
        The lowest training loss reached; None with early stopping.

    loss_curve_ : list of float
        The loss at each epoch (or ``'lbfgs'`` iteration).

    validation_scores_ : list of float or None
        Validation accuracy at each epoch with early stopping, else None.

    best_validation_score_ : float or None
        Best validation accuracy with early stopping, else None.

    t_ : int
        Number of training samples seen by the stochastic solver.

    coefs_ : list of ndarray
        Kernels, layer by layer: the Keras ``Dense`` kernels of the default
        network (for a custom network, its trainable weights of rank >= 2).

    intercepts_ : list of ndarray
        Biases, layer by layer (for a custom network, its trainable weights
        of rank 1).

    n_features_in_ : int
        Number of features seen during :term:`fit`.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`. Defined only when `X`
        has feature names that are all strings.

    n_iter_ : int
        Epochs (or ``'lbfgs'`` iterations) run by the last call to fit.

    n_layers_ : int
        Number of layers, input and output included (``len(coefs_) + 1``).

    n_outputs_ : int
        Number of outputs of the network.

    out_activation_ : str
        Output activation: ``'softmax'`` or ``'logistic'``.

    model_ : keras.Model
        The trained network. It is built from the fitted weights on first
        access (and after unpickling); changing it does not change the
        estimator.

    history_ : dict of list
        Per-epoch training history in Keras' ``History.history`` form:
        ``loss`` and ``learning_rate``, plus ``val_accuracy`` with early
        stopping.

    See Also
    --------
    sklearn.neural_network.MLPClassifier : The NumPy multi-layer perceptron
        this estimator mirrors.

    Notes
    -----
    Training runs whole epochs inside one compiled TensorFlow function that is
    traced once per network structure and reused by every later fit in the
    process, so repeated fits cost about as much as MLPClassifier's. The
    default network computes in float64, or float32 when ``X`` is float32.
    TensorFlow and Keras are imported on the first fit (or the first
    prediction of an unpickled custom network), never at import.

    A call to fit that fails (bad input, a diverging loss) leaves the estimator
    exactly as it was. An interrupt (``KeyboardInterrupt``) during fit is
    noticed when the compiled loop hands control back to Python: after every
    epoch with ``verbose`` or ``callbacks``, otherwise after each chunk of
    epochs (often the whole fit). If no epoch had been handed back, the
    estimator is left exactly as it was and the interrupt propagates;
    otherwise training stops there, fitted up to the last epoch handed back,
    with the warning "Training interrupted by user." (as MLPClassifier).

    Sparse ``X`` is accepted everywhere; training densifies it (batches are
    sliced inside the compiled loop), prediction with the default network
    multiplies it as it is.

    With minibatches, ``sample_weight=k`` weighs a sample's loss k times in
    its batch (as MLPClassifier): exactly equivalent to k copies with full
    batches and ``'lbfgs'``, equivalent in expectation otherwise.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sk_keras_digits import KerasDigitClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = KerasDigitClassifier(
    ...     hidden_layer_sizes=(15,), activation="logistic", solver="sgd",
    ...     learning_rate_init=0.1, batch_size=100, max_iter=50, random_state=0,
    ... ).fit(X[:1000], y[:1000])
    >>> clf.predict(X[1000:1005])
    array([1, 4, 0, 5, 3])
    >>> round(clf.score(X[1000:], y[1000:]), 2) >= 0.88
    True
    """

    _parameter_constraints: dict = {
        "hidden_layer_sizes": [
            "array-like",
            Interval(Integral, 1, None, closed="left"),
        ],
        "activation": [StrOptions({"identity", "logistic", "tanh", "relu"})],
        "solver": [StrOptions({"lbfgs", "sgd", "adam"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [
            StrOptions({"auto"}),
            Interval(Integral, 1, None, closed="left"),
        ],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [
            Interval(Integral, 1, None, closed="left"),
            Options(Real, {np.inf}),
        ],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "network": [callable, None],
        "callbacks": [list, None],
    }

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        network=None,
        callbacks=None,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.network = network
        self.callbacks = callbacks

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the network to data matrix X and targets y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Class labels of any type, or a multilabel indicator matrix.

        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative sample weights; a weight of k counts a sample k times.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._transaction(X, y, sample_weight, incremental=False)

    def _check_solver(self):
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise AttributeError(
                "partial_fit is only available for stochastic optimizers. "
                f"solver={self.solver!r} is not stochastic."
            )
        if self.early_stopping:
            raise AttributeError(
                "partial_fit is not available with early_stopping=True: one "
                "epoch per call leaves no room for a validation split."
            )
        return True

    @available_if(_check_solver)
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Update the network with one epoch over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            The target values.

        classes : array-like of shape (n_classes,), default=None
            Every class across all calls to partial_fit; required on the first
            call, optional afterwards.

        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative sample weights.

        Returns
        -------
        self : object
            The updated estimator.
        """
        return self._transaction(X, y, sample_weight, incremental=True, classes=classes)

    def _transaction(self, X, y, sample_weight, incremental, classes=None):
        """Fit, and on any error leave the estimator exactly as it was."""
        before = dict(self.__dict__)
        try:
            return self._fit(X, y, sample_weight, incremental, classes)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(before)
            raise

    def _fit(self, X, y, sample_weight, incremental, classes):
        hidden = self._hidden_layer_sizes()
        if incremental and _check_partial_fit_first_call(self, classes):
            # _check_partial_fit_first_call sets classes_; the binarizer is
            # fitted below, once y has been validated.
            del self.classes_
        first_pass = not hasattr(self, "coefs_") or (
            not self.warm_start and not incremental
        )
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            dtype=(np.float64, np.float32),
            reset=first_pass,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, X, dtype=X.dtype, ensure_non_negative=True
            )
            if not sample_weight.sum() > 0:
                raise ValueError(
                    "sample_weight must have a positive sum; got weights summing "
                    f"to {sample_weight.sum()}."
                )
        if X.shape[0] < 2 and not incremental:
            raise ValueError(
                f"X has {X.shape[0]} sample; at least 2 samples are needed to fit."
            )
        self._encode_targets(y, first_pass, incremental, classes)
        binarizer = self._label_binarizer
        if len(binarizer.classes_) < 2 and not binarizer.y_type_.startswith("multi"):
            raise ValueError(
                f"y has only one class ({binarizer.classes_.tolist()}); a classifier "
                "needs at least 2 classes."
            )
        Y = _labels.encode(self._label_binarizer, y, X.dtype)
        if first_pass:
            self.n_outputs_ = Y.shape[1]
        sw = np.ones(X.shape[0], X.dtype) if sample_weight is None else sample_weight
        if hasattr(X, "toarray"):
            X = X.toarray()

        from . import _training  # TensorFlow loads here

        rng = self._random_state()
        network = self._build_network(X, Y, hidden, first_pass, rng)
        if first_pass:
            self._initialize(network, rng)
        if self.solver == "lbfgs":
            self._fit_lbfgs(_training, network, X, Y, sw)
        else:
            self._fit_stochastic(_training, network, X, y, Y, sw, rng, incremental)
        self._set_weights(self._params, self._buffers)
        return self

    def _hidden_layer_sizes(self):
        sizes = self.hidden_layer_sizes
        if not hasattr(sizes, "__iter__"):
            sizes = [sizes]
        sizes = list(sizes)
        if not all(isinstance(s, Integral) and s > 0 for s in sizes):
            raise ValueError(
                "hidden_layer_sizes must be positive integers, got "
                f"{self.hidden_layer_sizes!r}."
            )
        return [int(s) for s in sizes]

    def _random_state(self):
        if self.random_state is None:
            # Fresh entropy from the OS: NumPy's global RandomState is the
            # user's, and is neither read nor advanced.
            return np.random.RandomState(np.random.SeedSequence().generate_state(1))
        return check_random_state(self.random_state)

    def _encode_targets(self, y, first_pass, incremental, classes):
        if incremental and not hasattr(self, "classes_"):
            self._label_binarizer = _labels.fit_binarizer(y, classes)
            self.classes_ = self._label_binarizer.classes_
            _labels.check_known_labels(self._label_binarizer, y, "partial_fit")
        elif first_pass:
            self._label_binarizer = _labels.fit_binarizer(y)
            self.classes_ = self._label_binarizer.classes_
        elif self.warm_start and not incremental:
            seen = unique_labels(y)
            if set(seen) != set(self.classes_):
                raise ValueError(
                    "warm_start can only be used where `y` has the same classes "
                    f"as in the previous call to fit. Previously got "
                    f"{self.classes_}, `y` has {seen}."
                )
        else:
            _labels.check_known_labels(self._label_binarizer, y, "partial_fit")

    def _build_network(self, X, Y, hidden, first_pass, rng):
        from . import _network

        out_activation = _labels.output_activation(self._label_binarizer)
        dtype = X.dtype.name
        if self.network is None:
            units = [X.shape[1], *hidden, Y.shape[1]]
            if not first_pass:
                units = [c.shape[0] for c in self.coefs_] + [self.coefs_[-1].shape[1]]
            return _network.DenseNetwork(units, self.activation, out_activation, dtype)
        if not first_pass and getattr(self, "_network", None) is not None:
            return self._network
        network = _network.CustomNetwork(
            self.network, X.shape[1], Y.shape[1], out_activation, dtype
        )
        network.build(int(rng.randint(np.iinfo(np.int32).max)) if first_pass else 0)
        if not first_pass:
            network.build_model(self._params, self._buffers)
        return network

    def _initialize(self, network, rng):
        if self.network is None:
            params, buffers = network.initial_params(rng)
        else:
            params, buffers = network.initial_params()
        self.out_activation_ = network.out_activation
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_curve_ = []
        self.history_ = {"loss": [], "learning_rate": []}
        self._params, self._buffers = params, buffers
        self._solver_state = None
        self._loop = {
            "learning_rate": float(self.learning_rate_init),
            "best_loss": np.inf,
            "best_score": -np.inf,
            "no_improvement": 0,
            "t": 0.0,
            "best_params": params,
            "best_buffers": buffers,
        }
        if self.early_stopping:
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
            self.history_["val_accuracy"] = []
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
            self.best_loss_ = np.inf
        self._network = network

    def _set_weights(self, params, buffers):
        """Store fitted weights and derive the public views of them."""
        if any(not np.isfinite(p).all() for p in params):
            raise ValueError(
                "Training produced non-finite weights: the input data may contain "
                "very large values (scale them) or the learning rate may be too "
                f"high (learning_rate_init={self.learning_rate_init})."
            )
        self._params, self._buffers = params, buffers
        self.coefs_ = [p for p in params if p.ndim >= 2]
        self.intercepts_ = [p for p in params if p.ndim == 1]
        self.n_layers_ = len(self.coefs_) + 1
        self._model = None

    def _fit_lbfgs(self, training, network, X, Y, sw):
        params, result, losses = training.train_lbfgs(
            network,
            self._params,
            self._buffers,
            X,
            Y,
            sw,
            self.alpha,
            self.max_iter,
            self.max_fun,
            self.tol,
            self.verbose,
        )
        if not np.isfinite(result.fun):
            raise self._diverged_error(len(losses))
        if result.status != 0:
            message = result.message
            if isinstance(message, bytes):
                message = message.decode("latin1")
            warnings.warn(
                f"lbfgs failed to converge after {result.nit} iteration(s) "
                f"(status={result.status}): {message}. Increase max_iter or "
                "max_fun, or scale the data.",
                ConvergenceWarning,
                stacklevel=6,
            )
        self.n_iter_ = min(int(result.nit), self.max_iter)
        self.loss_ = float(result.fun)
        self.loss_curve_ = self.loss_curve_ + losses
        self.best_loss_ = min(self.loss_curve_, default=self.loss_)
        self.history_ = {"loss": list(self.loss_curve_)}
        self._params = params

    def _fit_stochastic(self, training, network, X, y, Y, sw, rng, incremental):
        from . import _solvers

        data = {"X": X, "Y": Y, "sw": sw, "X_val": None, "Y_val": None, "sw_val": None}
        if self.early_stopping:
            data = self._validation_split(X, y, Y, sw, rng)
        n_samples = data["X"].shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn(
                    f"Got batch_size={self.batch_size} larger than the sample size "
                    f"({n_samples}). It is going to be clipped.",
                    stacklevel=6,
                )
            batch_size = int(np.clip(self.batch_size, 1, n_samples))
        loop = dict(self._loop)
        if not incremental or self._solver_state is None:
            # A new solver each fit, as MLPClassifier: fresh moments and the
            # initial learning rate; partial_fit carries both across calls.
            solver_state = _solvers.initial_state(self.solver, self._params)
            loop["learning_rate"] = float(self.learning_rate_init)
        else:
            solver_state = self._solver_state
        state = {
            "params": self._params,
            "buffers": self._buffers,
            "solver_state": solver_state,
            "loop": loop,
        }
        hyper = {
            "learning_rate_init": self.learning_rate_init,
            "momentum": self.momentum,
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
            "alpha": self.alpha,
            "tol": self.tol,
            "power_t": self.power_t,
            "n_iter_no_change": self.n_iter_no_change,
        }
        options = {
            "solver": self.solver,
            "nesterov": self.nesterovs_momentum and self.momentum > 0,
            "schedule": self.learning_rate if self.solver == "sgd" else "constant",
            "shuffle": self.shuffle,
            "batch_size": batch_size,
        }
        n_epochs = 1 if incremental else self.max_iter
        seed = int(rng.randint(np.iinfo(np.int32).max))
        reporter = EpochReporter(self, network, n_epochs, n_samples, batch_size)
        state, log = training.train_stochastic(
            network,
            state,
            data,
            hyper,
            options,
            n_epochs,
            seed,
            on_epoch_end=reporter if reporter.active else None,
        )
        if log.status == training.DIVERGED:
            raise self._diverged_error(len(log))
        loop = state["loop"]
        params, buffers = state["params"], state["buffers"]
        if self.early_stopping:
            params, buffers = loop["best_params"], loop["best_buffers"]
        params, buffers = reporter.finish(params, buffers)

        self.n_iter_ = len(log)
        self.t_ = int(loop["t"])
        self.loss_ = log.losses[-1]
        self.loss_curve_ = self.loss_curve_ + log.losses
        history = {k: list(v) for k, v in self.history_.items()}
        history["loss"] += log.losses
        history["learning_rate"] += log.learning_rates[: len(log)]
        if self.early_stopping:
            self.validation_scores_ = self.validation_scores_ + log.scores
            self.best_validation_score_ = loop["best_score"]
            history["val_accuracy"] += log.scores
        else:
            self.best_loss_ = loop["best_loss"]
        self.history_ = history
        self._solver_state = state["solver_state"]
        self._loop = loop
        self._params, self._buffers = params, buffers
        if log.interrupted:
            warnings.warn("Training interrupted by user.", stacklevel=6)
        elif (
            not incremental
            and log.status == training.RUNNING
            and self.n_iter_ == self.max_iter
        ):
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached "
                "and the optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=6,
            )

    def _validation_split(self, X, y, Y, sw, rng):
        """Set aside ``validation_fraction`` of the data for early stopping.

        The split is stratified on the labels (not for multilabel targets),
        unless the data are too small to stratify (a class with a single
        sample, or fewer validation samples than classes): then it is a plain
        random split.
        """
        multilabel = self._label_binarizer.y_type_.startswith("multilabel")
        split = dict(random_state=rng, test_size=self.validation_fraction)
        state = rng.get_state()
        try:
            parts = train_test_split(
                X, Y, sw, stratify=None if multilabel else y, **split
            )
        except ValueError:
            rng.set_state(state)
            try:
                parts = train_test_split(X, Y, sw, **split)
            except ValueError as exc:
                raise ValueError(
                    f"validation_fraction={self.validation_fraction} sets aside no "
                    f"validation samples of {X.shape[0]} for early_stopping "
                    f"({exc}). Increase validation_fraction or set "
                    "early_stopping=False."
                ) from exc
        X_train, X_val, Y_train, Y_val, sw_train, sw_val = parts
        if X_val.shape[0] < 2:
            raise ValueError(
                "The validation set is too small. Increase 'validation_fraction' "
                "or the size of your dataset."
            )
        return {
            "X": X_train,
            "Y": Y_train,
            "sw": sw_train,
            "X_val": X_val,
            "Y_val": Y_val,
            "sw_val": sw_val,
        }

    def _diverged_error(self, epoch):
        hint = (
            " Does the network's last layer apply the output activation?"
            if self.network is not None
            else ""
        )
        return ValueError(
            f"Training diverged: the loss became NaN or infinite after {epoch} "
            f"iteration(s). Lower learning_rate_init (got {self.learning_rate_init}) "
            f"or scale X.{hint} The estimator keeps its previous state."
        )

    # -------------------------------------------------------------- predict
    def _forward(self, X):
        proba = self._raw_forward(X)
        finite = np.isfinite(proba).all(axis=1)
        if not finite.all():
            rows = np.flatnonzero(~finite)
            largest = abs(X).max() if X.shape[0] else 0
            raise ValueError(
                f"The network's output is not finite for {rows.size} sample(s) of "
                f"X (first: row {rows[0]}): X holds values too large for "
                f"{proba.dtype} arithmetic (largest |X| = {largest:.3g}). Scale X "
                "as the training data were."
            )
        return proba

    def _raw_forward(self, X):
        if self.network is None:
            return dense_forward(
                self.coefs_,
                self.intercepts_,
                X,
                self.activation,
                self.out_activation_,
            )
        from . import _training

        network = self._get_network()
        program = _training.get_program(network)
        if hasattr(X, "toarray"):
            X = X.toarray()
        X = np.asarray(X, dtype=network.compute_dtype)
        return program.predict(self._params, self._buffers, X)

    def _get_network(self):
        """The network object (rebuilt after unpickling)."""
        network = getattr(self, "_network", None)
        if network is None:
            from . import _network

            if self.network is None:
                units = [c.shape[0] for c in self.coefs_] + [self.coefs_[-1].shape[1]]
                network = _network.DenseNetwork(
                    units,
                    self.activation,
                    self.out_activation_,
                    self.coefs_[0].dtype.name,
                )
            else:
                network = _network.CustomNetwork(
                    self.network,
                    self.n_features_in_,
                    self.n_outputs_,
                    self.out_activation_,
                    self._params[0].dtype.name,
                )
                network.build(0)
            self._network = network
        return network

    def _validate_for_predict(self, X):
        check_is_fitted(self)
        return validate_data(
            self,
            X,
            accept_sparse=["csr", "csc"],
            dtype=(np.float64, np.float32),
            reset=False,
        )

    def predict(self, X):
        """Predict class labels for X.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_labels)
            The predicted classes, as the labels (and dtype) seen in fit.
        """
        X = self._validate_for_predict(X)
        return _labels.decode(self._label_binarizer, self._forward(X))

    def predict_proba(self, X):
        """Probability estimates.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probability of each class, in the order of `classes_`.
        """
        X = self._validate_for_predict(X)
        proba = self._forward(X)
        if self.n_outputs_ == 1:
            proba = proba.ravel()
            return np.vstack([1 - proba, proba]).T
        return proba

    def predict_log_proba(self, X):
        """Log of probability estimates.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            ``log(predict_proba(X))``.
        """
        proba = self.predict_proba(X)
        with np.errstate(divide="ignore"):
            return np.log(proba, out=proba)

    @property
    def model_(self):
        """The trained ``keras.Model`` (built on first access)."""
        check_is_fitted(self)
        if getattr(self, "_model", None) is None:
            self._model = self._get_network().build_model(self._params, self._buffers)
        return self._model

    def __getstate__(self):
        state = dict(super().__getstate__())
        for name in _KERAS_STATE:
            state.pop(name, None)
        return state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.classifier_tags.multi_label = True
        return tags
