"""The estimator: :class:`KerasDigitClassifier`."""

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, Options, StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import unique_labels
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from ._inference import predict_proba
from ._labels import LabelEncoding
from ._state import DIVERGED, RUNNING, FittedState

#: Attributes caching Keras objects: rebuilt on demand, never pickled.
KERAS_CACHE = ("_network", "_model")


def _is_layer_width(size):
    """Whether ``size`` is a positive integer: a bool is not (as MLPClassifier,
    which fails on ``True``, though ``bool`` is an ``Integral``)."""
    return isinstance(size, Integral) and not isinstance(size, bool) and size > 0


def _adam_epsilon(epsilon, dtype):
    """Adam's ``epsilon`` as the compute dtype can hold it, never zero.

    TensorFlow flushes subnormal numbers to zero, so an ``epsilon`` below the
    dtype's smallest normal number (``5e-324``, or ``1e-40`` in float32) would
    divide a weight's zero gradient by zero: NaN where MLPClassifier moves
    nothing. It counts as that smallest normal number instead, which changes
    no step MLPClassifier takes by more than rounding, unless the gradient
    itself is nearly that small.
    """
    try:
        tiny = float(np.finfo(dtype).tiny)
    except ValueError:  # a dtype NumPy does not know (a custom network's bfloat16)
        return float(epsilon)
    return max(float(epsilon), tiny)


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

    solver : {'lbfgs', 'sgd', 'adam'} or keras.optimizers.Optimizer, \
            default='adam'
        The solver for weight optimisation. ``'sgd'`` and ``'adam'`` run in a
        compiled TensorFlow loop; ``'lbfgs'`` drives Keras-computed loss and
        gradients with SciPy's L-BFGS-B, as MLPClassifier does with its own.
        A Keras optimizer instance (e.g. ``keras.optimizers.AdamW(1e-3,
        weight_decay=1e-4)``, with a float learning rate or a
        ``LearningRateSchedule``) trains in the same compiled loop. It is
        never built or changed: every fit starts a fresh optimizer of its
        class and ``get_config()``. It owns its learning rate, schedule and
        moments, so the built-in solvers' settings (``learning_rate_init``,
        ``power_t``, ``momentum``, ``nesterovs_momentum``, ``beta_1``,
        ``beta_2``, ``epsilon``) are unused, as MLPClassifier leaves
        ``momentum`` unused with ``'adam'``; ``learning_rate='invscaling'`` or
        ``'adaptive'`` raises a ValueError (give the optimizer a Keras
        schedule instead). ``alpha``, ``batch_size``, ``shuffle``,
        ``max_iter``, ``tol``, ``n_iter_no_change``, ``early_stopping`` and
        ``partial_fit`` apply as with ``'adam'``.

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
        Adam's numerical stability term. One below the smallest normal number
        of the compute dtype (about 2.2e-308 in float64) counts as that
        number: TensorFlow flushes subnormal numbers to zero.

    n_iter_no_change : int, default=10
        Epochs without ``tol`` improvement before stopping (or, with
        ``learning_rate='adaptive'``, before dividing the learning rate).

    max_fun : int, default=15000
        Most loss evaluations of ``'lbfgs'``.

    network : NetworkBuilder or callable, default=None
        A custom architecture: ``network(n_features_in, n_outputs,
        output_activation)`` returns an uncompiled ``keras.Model`` mapping
        ``(n_samples, n_features_in)`` inputs to ``(n_samples, n_outputs)``
        probabilities, its last layer applying ``output_activation``
        (``'softmax'`` or ``'sigmoid'``). Prefer a
        :class:`~sk_keras_digits.NetworkBuilder` subclass: its own parameters
        are nested parameters of the estimator (``network__<name>``), so
        ``set_params`` and :class:`~sklearn.model_selection.GridSearchCV`
        reach them, and ``clone`` copies them. A module-level function (or a
        ``functools.partial`` of one) works too. It is called at fit under a
        scoped seed (from ``random_state``) and, for layers that do not set
        their own, the dtype of ``X``. ``hidden_layer_sizes`` and
        ``activation`` are then unused; the solvers, ``alpha`` (on kernels of
        rank >= 2), stopping rules and everything else apply unchanged, and the
        layers' own regularisation losses are added.

    callbacks : list of keras.callbacks.Callback, default=None
        Keras callbacks, called at the start and end of training and of every
        epoch with ``logs`` holding ``loss``, ``learning_rate`` and, with
        early stopping, ``val_accuracy``. ``model.stop_training = True`` stops
        training. Batch-level hooks are not called: batches run inside the
        compiled loop. After fit each callback holds the model it held before
        (normally none): its own counters and state are kept.

    class_weight : dict, 'balanced' or None, default=None
        Weights of the classes, as in
        :class:`~sklearn.linear_model.LogisticRegression`: ``{label: weight}``
        (classes not named weigh 1), or ``'balanced'`` for
        ``n_samples / (n_classes * np.bincount(y))`` computed from the labels
        of the current call to fit. They multiply ``sample_weight``. A key
        that is not a class, or a weight that is not a finite non-negative
        number, raises a ValueError; multilabel targets and
        ``'balanced'`` with ``partial_fit`` are refused (pass ``sample_weight``
        or a dict of weights instead).

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
        "solver": [
            StrOptions({"lbfgs", "sgd", "adam"}),
            HasMethods(["apply", "get_config"]),  # a keras.optimizers.Optimizer
        ],
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
        "class_weight": [dict, StrOptions({"balanced"}), None],
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
        class_weight=None,
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
        self.class_weight = class_weight

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
        if isinstance(self.solver, str) and self.solver == "lbfgs":
            raise AttributeError(
                "partial_fit is only available for stochastic optimizers. "
                f"solver={self.solver!r} is not stochastic."
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
        if self.early_stopping:
            # As MLPClassifier: one epoch per call leaves no room for a
            # validation split.
            raise ValueError("partial_fit does not support early_stopping=True")
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
        state = getattr(self, "_state", None)
        first_pass = state is None or (not self.warm_start and not incremental)
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
        sample_weight = self._check_sample_weight(sample_weight, X)
        if X.shape[0] < 2 and not incremental:
            raise ValueError(
                f"X has {X.shape[0]} sample; at least 2 samples are needed to fit."
            )
        labels = self._encode_labels(y, state, first_pass, incremental, classes)
        sample_weight = self._weigh_classes(sample_weight, y, labels, incremental)
        Y = labels.encode(y, X.dtype)
        if hasattr(X, "toarray"):
            X = X.toarray()

        from . import _training  # TensorFlow loads here

        rng = self._random_state()
        network = self._network_for(X, labels, hidden, first_pass, rng)
        if first_pass:
            state = FittedState.initial(
                labels,
                network.initial_weights(rng),
                self.learning_rate_init,
                self.early_stopping,
            )
        data = _training.TrainingData(X, Y, sample_weight)
        if self.solver == "lbfgs":
            state = self._fit_lbfgs(_training, network, state, data)
        else:
            state = self._fit_stochastic(
                _training, network, state, data, y, rng, incremental
            )
        if not state.weights.all_finite():
            raise ValueError(
                "Training produced non-finite weights: the input data may contain "
                "very large values (scale them) or the learning rate may be too "
                f"high ({self._learning_rate_setting()})."
            )
        self._state = state
        self._network = network
        self._model = None
        return self

    # -- validation ------------------------------------------------------------
    def _hidden_layer_sizes(self):
        sizes = self.hidden_layer_sizes
        if not hasattr(sizes, "__iter__"):
            sizes = [sizes]
        sizes = list(sizes)
        if not all(_is_layer_width(s) for s in sizes):
            raise ValueError(
                "hidden_layer_sizes must be positive integers (not bools), got "
                f"{self.hidden_layer_sizes!r}."
            )
        return [int(s) for s in sizes]

    @staticmethod
    def _check_sample_weight(sample_weight, X):
        if sample_weight is None:
            return np.ones(X.shape[0], X.dtype)
        sample_weight = _check_sample_weight(
            sample_weight, X, dtype=X.dtype, ensure_non_negative=True
        )
        if not sample_weight.sum() > 0:
            raise ValueError(
                "sample_weight must have a positive sum; got weights summing "
                f"to {sample_weight.sum()}."
            )
        return sample_weight

    def _weigh_classes(self, sample_weight, y, labels, incremental):
        """``sample_weight`` multiplied by the weight of each sample's class."""
        class_weight = self.class_weight
        if class_weight is None:
            return sample_weight
        labels.check_class_weight(class_weight)
        if class_weight == "balanced" and incremental:
            raise ValueError(
                "class_weight='balanced' is not supported for partial_fit: one "
                "call's labels are not the class frequencies. Compute them with "
                "sklearn.utils.class_weight.compute_class_weight('balanced', "
                "classes=classes, y=y) on enough of the training targets, and pass "
                "the resulting dict as class_weight."
            )
        weights = compute_class_weight(class_weight, classes=labels.classes, y=y)
        index = np.searchsorted(labels.classes, y)
        weighted = (sample_weight * weights[index]).astype(sample_weight.dtype)
        if not weighted.sum() > 0:
            present = labels.classes[np.unique(index)].tolist()
            raise ValueError(
                f"class_weight={class_weight!r} gives every sample a weight of 0 "
                f"(the classes of y are {present}): nothing would be learnt. "
                "Give at least one class of y a positive weight."
            )
        return weighted

    def _random_state(self):
        if self.random_state is None:
            # Fresh entropy from the OS: NumPy's global RandomState is the
            # user's, and is neither read nor advanced.
            return np.random.RandomState(np.random.SeedSequence().generate_state(1))
        return check_random_state(self.random_state)

    def _encode_labels(self, y, state, first_pass, incremental, classes):
        """The label encoding of this fit, checking ``y`` against a previous one."""
        if first_pass and incremental and state is None:
            if classes is None:
                raise ValueError(
                    "classes must be passed on the first call to partial_fit."
                )
            labels = LabelEncoding.fit(y, classes)
            labels.check_known(y, "partial_fit")
            return labels
        if first_pass:
            return LabelEncoding.fit(y)
        labels = state.labels
        if incremental:
            if classes is not None and not np.array_equal(
                labels.classes, unique_labels(classes)
            ):
                raise ValueError(
                    f"`classes={unique_labels(classes)!r}` is not the same as on last "
                    f"call to partial_fit, was: {labels.classes!r}"
                )
            labels.check_known(y, "partial_fit")
        else:  # warm_start
            seen = unique_labels(y)
            if set(seen) != set(labels.classes):
                raise ValueError(
                    "warm_start can only be used where `y` has the same classes "
                    f"as in the previous call to fit. Previously got "
                    f"{labels.classes}, `y` has {seen}."
                )
        return labels

    # -- network -----------------------------------------------------------------
    def _network_for(self, X, labels, hidden, first_pass, rng):
        """The network this fit trains: a new one, or the fitted one's."""
        from . import _network

        dtype = X.dtype.name
        if self.network is None:
            units = [X.shape[1], *hidden, labels.n_outputs]
            if not first_pass:
                coefs = self._state.weights.coefs
                units = [c.shape[0] for c in coefs] + [coefs[-1].shape[1]]
            return _network.DenseNetwork(
                units, self.activation, labels.out_activation, dtype
            )
        if not first_pass and getattr(self, "_network", None) is not None:
            return self._network
        network = _network.CustomNetwork(
            self.network, X.shape[1], labels.n_outputs, labels.out_activation, dtype
        )
        network.build(int(rng.randint(np.iinfo(np.int32).max)) if first_pass else 0)
        if first_pass:
            network.check_outputs(X)
        else:
            network.build_model(self._state.weights)
        return network

    # -- solvers -------------------------------------------------------------------
    def _fit_lbfgs(self, training, network, state, data):
        run = training.train_lbfgs(
            network,
            state.weights,
            data,
            self.alpha,
            self.max_iter,
            self.max_fun,
            self.tol,
            self.verbose,
        )
        result = run.result
        if not np.isfinite(result.fun):
            raise self._diverged_error(len(run.losses))
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
        n_iter = min(int(result.nit), self.max_iter)
        return state.after_lbfgs(run.weights, run.losses, float(result.fun), n_iter)

    def _stochastic_config(self, training, batch_size, dtype):
        """The solver object and the numbers of this fit's training loop.

        The numbers enter the loop as floats of the compute ``dtype``.
        """
        from . import _solvers

        if self.solver == "sgd":
            solver = _solvers.SGD(
                nesterov=self.nesterovs_momentum and self.momentum > 0,
                schedule=_solvers.SCHEDULES[self.learning_rate](),
            )
            numbers = solver.Hyper(
                learning_rate_init=float(self.learning_rate_init),
                momentum=float(self.momentum),
                power_t=float(self.power_t),
            )
        elif self.solver == "adam":
            solver = _solvers.Adam()
            numbers = solver.Hyper(
                learning_rate_init=float(self.learning_rate_init),
                beta_1=float(self.beta_1),
                beta_2=float(self.beta_2),
                epsilon=_adam_epsilon(self.epsilon, dtype),
            )
        else:
            self._check_optimizer_settings(_solvers)
            solver = _solvers.KerasOptimizer(self.solver)
            numbers = solver.Hyper()
        hyper = training.Hyper(
            alpha=float(self.alpha),
            tol=float(self.tol),
            n_iter_no_change=float(self.n_iter_no_change),
            solver=numbers,
        )
        return training.TrainingConfig(
            solver=solver,
            hyper=hyper,
            batch_size=batch_size,
            shuffle=bool(self.shuffle),
            early_stopping=bool(self.early_stopping),
        )

    def _check_optimizer_settings(self, solvers):
        """Refuse a built-in learning-rate schedule with a Keras optimizer object.

        The built-in solvers' other settings are unused with an optimizer
        object, as MLPClassifier leaves ``momentum`` unused with ``'adam'``, so
        that one grid can search string solvers and optimizer objects.
        """
        if self.learning_rate != "constant":
            raise ValueError(
                f"learning_rate={self.learning_rate!r} is a schedule of the "
                "built-in 'sgd' solver; it has no meaning with "
                f"solver={solvers.describe(self.solver)}, whose own learning "
                "rate applies. Give the optimizer a "
                "keras.optimizers.schedules.LearningRateSchedule instead, or "
                "leave learning_rate='constant'."
            )

    def _batch_size(self, n_samples):
        if isinstance(self.batch_size, str):  # "auto"
            return min(200, n_samples)
        if self.batch_size > n_samples:
            warnings.warn(
                f"Got batch_size={self.batch_size} larger than the sample size "
                f"({n_samples}). It is going to be clipped.",
                stacklevel=7,
            )
        return int(np.clip(self.batch_size, 1, n_samples))

    def _fit_stochastic(self, training, network, state, data, y, rng, incremental):
        from ._callbacks import EpochReporter

        validation = None
        if self.early_stopping:
            data, validation = self._validation_split(training, data, y, state, rng)
        n_samples = data.X.shape[0]
        config = self._stochastic_config(
            training, self._batch_size(n_samples), network.compute_dtype
        )
        start = state.training
        if not incremental or start.solver is None:
            # A new solver each fit, as MLPClassifier: fresh moments and the
            # initial learning rate; partial_fit carries both across calls.
            start = start._replace(
                solver=config.solver.initial_state(start.weights),
                progress=start.progress._replace(
                    learning_rate=float(self.learning_rate_init)
                ),
            )
        else:
            training.check_solver_state(config.solver, start)
        n_epochs = 1 if incremental else self.max_iter
        seed = int(rng.randint(np.iinfo(np.int32).max))
        reporter = EpochReporter(
            self, network, start.weights, n_epochs, n_samples, config.batch_size
        )
        try:
            end, log = training.train_stochastic(
                network,
                config,
                start,
                data,
                validation,
                n_epochs,
                seed,
                on_epoch_end=reporter if reporter.active else None,
            )
        except BaseException:
            reporter.detach()
            raise
        if log.status == DIVERGED:
            reporter.detach()
            raise self._diverged_error(log.n_epochs)
        weights = end.weights
        if self.early_stopping:
            weights = end.progress.best_weights
        end = end._replace(
            weights=reporter.finish(weights),
            progress=end.progress._replace(best_weights=None),
        )
        if log.interrupted:
            warnings.warn("Training interrupted by user.", stacklevel=6)
        elif (
            not incremental and log.status == RUNNING and log.n_epochs == self.max_iter
        ):
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached "
                "and the optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=6,
            )
        return state.after_epochs(end, log)

    def _validation_split(self, training, data, y, state, rng):
        """Set aside ``validation_fraction`` of the data for early stopping.

        The split is stratified on the labels (not for multilabel targets),
        unless the data are too small to stratify (a class with a single
        sample, or fewer validation samples than classes): then it is a plain
        random split.
        """
        multilabel = state.labels.multilabel
        split = dict(random_state=rng, test_size=self.validation_fraction)
        before = rng.get_state()
        try:
            parts = train_test_split(*data, stratify=None if multilabel else y, **split)
        except ValueError:
            rng.set_state(before)
            try:
                parts = train_test_split(*data, **split)
            except ValueError as exc:
                raise ValueError(
                    f"validation_fraction={self.validation_fraction} sets aside no "
                    f"validation samples of {data.X.shape[0]} for early_stopping "
                    f"({exc}). Increase validation_fraction or set "
                    "early_stopping=False."
                ) from exc
        if parts[1].shape[0] < 2:
            raise ValueError(
                "The validation set is too small. Increase 'validation_fraction' "
                "or the size of your dataset."
            )
        return training.TrainingData(*parts[0::2]), training.TrainingData(*parts[1::2])

    def _diverged_error(self, epoch):
        hint = (
            " Does the network's last layer apply the output activation?"
            if self.network is not None
            else ""
        )
        return ValueError(
            f"Training diverged: the loss became NaN or infinite after {epoch} "
            f"iteration(s). Lower the learning rate ({self._learning_rate_setting()}) "
            f"or scale X.{hint} The estimator keeps its previous state."
        )

    def _learning_rate_setting(self):
        """Where this fit's learning rate comes from, for messages."""
        if isinstance(self.solver, str):
            return f"learning_rate_init={self.learning_rate_init}"
        config = self.solver.get_config()
        return (
            f"the learning_rate of solver=<{type(self.solver).__name__}>, "
            f"{config.get('learning_rate')!r}"
        )

    # -------------------------------------------------------------- predict
    def _forward(self, X):
        state = self._state
        proba = predict_proba(
            X,
            state.weights,
            activation=self.activation,
            out_activation=state.labels.out_activation,
            network=None if self.network is None else self._get_network(),
        )
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

    def _get_network(self):
        """The network object (rebuilt after unpickling)."""
        network = getattr(self, "_network", None)
        if network is None:
            from . import _network

            state = self._state
            if self.network is None:
                coefs = state.weights.coefs
                network = _network.DenseNetwork(
                    [c.shape[0] for c in coefs] + [coefs[-1].shape[1]],
                    self.activation,
                    state.labels.out_activation,
                    coefs[0].dtype.name,
                )
            else:
                network = _network.CustomNetwork(
                    self.network,
                    self.n_features_in_,
                    state.labels.n_outputs,
                    state.labels.out_activation,
                    state.weights.params[0].dtype.name,
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
        return self._state.labels.decode(self._forward(X))

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

    # ---------------------------------------------------- fitted attributes
    # Views of the one fitted state (``_state``, a FittedState): nothing is
    # stored twice. Documented in the class docstring's Attributes section.
    def _fitted(self):
        check_is_fitted(self)
        return self._state

    classes_ = property(lambda self: self._fitted().labels.classes)
    n_outputs_ = property(lambda self: self._fitted().labels.n_outputs)
    out_activation_ = property(lambda self: self._fitted().labels.out_activation)
    coefs_ = property(lambda self: self._fitted().weights.coefs)
    intercepts_ = property(lambda self: self._fitted().weights.intercepts)
    n_layers_ = property(lambda self: len(self._fitted().weights.coefs) + 1)
    t_ = property(lambda self: int(self._fitted().training.progress.samples_seen))
    n_iter_ = property(lambda self: self._fitted().history.n_iter)
    loss_ = property(lambda self: self._fitted().history.loss)
    loss_curve_ = property(lambda self: list(self._fitted().history.losses))
    best_loss_ = property(lambda self: self._fitted().best_loss)
    validation_scores_ = property(lambda self: self._fitted().validation_scores)
    best_validation_score_ = property(lambda self: self._fitted().best_validation_score)
    history_ = property(lambda self: self._fitted().keras_history)

    @property
    def model_(self):
        """The trained ``keras.Model`` (built on first access)."""
        check_is_fitted(self)
        if getattr(self, "_model", None) is None:
            self._model = self._get_network().build_model(self._state.weights)
        return self._model

    def __sklearn_is_fitted__(self):
        return getattr(self, "_state", None) is not None

    def __getstate__(self):
        state = dict(super().__getstate__())
        for name in KERAS_CACHE:
            state.pop(name, None)
        return state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.classifier_tags.multi_label = True
        return tags
