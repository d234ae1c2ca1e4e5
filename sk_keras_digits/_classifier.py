"""The classifier: :class:`KerasDigitClassifier`."""

import inspect

import numpy as np
from sklearn.base import ClassifierMixin, _fit_context
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.class_weight import compute_class_weight

from ._availability import available_if
from ._base import BaseKerasMLP
from ._labels import LabelEncoding, sorted_labels

#: Whether the installed scikit-learn's ``compute_class_weight`` weighs the
#: samples it counts for ``"balanced"``.
_WEIGHTED_BALANCE = (
    "sample_weight" in inspect.signature(compute_class_weight).parameters
)

#: Why partial_fit refuses "balanced" (``{}``: "available" or "supported").
_BALANCED_PARTIAL_FIT = (
    "class_weight='balanced' is not {} for partial_fit: one call's labels "
    "are not the class frequencies. Compute them with "
    "sklearn.utils.class_weight.compute_class_weight('balanced', classes=classes, "
    "y=y) on enough of the training targets, and pass the resulting dict as "
    "class_weight."
)


class KerasDigitClassifier(ClassifierMixin, BaseKerasMLP):
    """A Keras network as a scikit-learn classifier, MLPClassifier's twin.

    The network is a Keras 3 model, trained on the backend Keras is configured
    with (TensorFlow, the default, or JAX; see :ref:`backends`). By default it is
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
        compiled loop of Keras' backend; ``'lbfgs'`` drives Keras-computed loss and
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
        Set aside ``validation_fraction`` of the training data (stratified
        for binary targets, as MLPClassifier) and stop when its accuracy fails to
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
        number: TensorFlow and XLA flush subnormal numbers to zero.

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
        (``'softmax'`` or ``'sigmoid'``); fit probes the new network and
        refuses one whose outputs are not such probabilities, or that has no
        trainable weights. Prefer a
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
        (normally none): its own counters and state are kept. The model has
        no optimizer (the solver runs in the compiled loop): callbacks that
        set its learning rate (``ReduceLROnPlateau``,
        ``LearningRateScheduler``) are refused with a ``ValueError``.

    class_weight : dict, 'balanced' or None, default=None
        Weights of the classes, as in
        :class:`~sklearn.linear_model.LogisticRegression`: ``{label: weight}``
        (classes not named weigh 1), or ``'balanced'`` for
        ``n_samples / (n_classes * np.bincount(y))`` computed from the labels
        of the current call to fit. They multiply ``sample_weight``. A key
        that is not a class, a weight that is not a finite non-negative
        number, or weights that give every sample of ``y`` a weight of 0
        raise a ValueError; multilabel targets and
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
    Training runs whole epochs inside one compiled program of Keras' backend
    (a ``tf.function`` on TensorFlow, traced once per network depth; a
    ``jax.jit`` function on JAX, compiled once per layer widths and bucket of
    data sizes) reused by every later fit in the process, so repeated fits
    cost about as much as MLPClassifier's, or less. The default network
    computes in float64, or float32 when ``X`` is float32 (on JAX, float64
    within a scoped ``jax.enable_x64``). Keras and its backend are imported on
    the first fit (or the first prediction of an unpickled custom network),
    never at import.

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
        **BaseKerasMLP._parameter_constraints,
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

    @available_if(lambda estimator: estimator._check_partial_fit())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Update the network with one epoch over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            The target values.

        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative sample weights.

        classes : array-like of shape (n_classes,), default=None
            Every class across all calls to partial_fit; required on the first
            call, optional afterwards.

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

    def _check_partial_fit(self):
        """True if ``partial_fit`` is available: a stochastic solver, and class
        weights that one call's labels can give."""
        self._check_solver()
        if isinstance(self.class_weight, str) and self.class_weight == "balanced":
            raise AttributeError(_BALANCED_PARTIAL_FIT.format("available"))
        return True

    # -- targets ---------------------------------------------------------------
    def _encode_targets(self, y, state, first_pass, incremental, classes):
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
            given = None if classes is None else sorted_labels(classes, "classes")
            if given is not None and not np.array_equal(labels.classes, given):
                raise ValueError(
                    f"`classes={given!r}` is not the same as on last "
                    f"call to partial_fit, was: {labels.classes!r}"
                )
            labels.check_known(y, "partial_fit")
        else:  # warm_start
            seen = sorted_labels(y)
            if set(seen) != set(labels.classes):
                raise ValueError(
                    "warm_start can only be used where `y` has the same classes "
                    f"as in the previous call to fit. Previously got "
                    f"{labels.classes}, `y` has {seen}."
                )
        return labels

    def _weigh_samples(self, sample_weight, y, labels, incremental):
        """``sample_weight`` multiplied by the weight of each sample's class."""
        class_weight = self.class_weight
        if class_weight is None:
            return sample_weight
        labels.check_class_weight(class_weight)
        if class_weight == "balanced" and incremental:
            # partial_fit fetched before set_params(class_weight="balanced").
            raise ValueError(_BALANCED_PARTIAL_FIT.format("supported"))
        weights = compute_class_weight(
            class_weight,
            classes=labels.classes,
            y=y,
            # "balanced" counts a sample of weight k as k samples (where
            # scikit-learn's function takes the weights; before, as one).
            **({"sample_weight": sample_weight} if _WEIGHTED_BALANCE else {}),
        )
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

    def _stratification(self, data, labels):
        """Stratify the early-stopping split as MLPClassifier does.

        That is on the encoded targets, as booleans, of a network with one
        output (binary targets, a single class or a one-column indicator):
        the same split, and the same error where a class is too small.
        Multiclass and multilabel targets get a plain random split, so that
        without shuffling the validation set and the weights are
        MLPClassifier's.
        """
        return data.Y.astype(bool) if labels.n_outputs == 1 else None

    # -------------------------------------------------------------- predict
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
        if proba.shape[1] == 1:
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
    def classes_(self):
        """Class labels (for multilabel targets, the label indices)."""
        return self._fitted().labels.classes

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        # Class weights are refused for multilabel targets (a sample belongs to
        # several classes).
        tags.classifier_tags.multi_label = self.class_weight is None
        return tags
