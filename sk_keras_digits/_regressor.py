"""The regressor: :class:`KerasDigitRegressor`."""

from sklearn.base import RegressorMixin, _fit_context
from sklearn.utils._param_validation import StrOptions

from ._availability import available_if
from ._base import BaseKerasMLP
from ._targets import RegressionTargets


class KerasDigitRegressor(RegressorMixin, BaseKerasMLP):
    """A Keras network as a scikit-learn regressor, MLPRegressor's twin.

    The network is a Keras 3 model, trained on the backend Keras is configured
    with (TensorFlow, the default, or JAX; see :ref:`backends`). By default it is
    :class:`~sklearn.neural_network.MLPRegressor`'s multi-layer perceptron,
    with the same parameters, defaults, initialisation, losses, solvers and
    stopping rules; pass ``network`` to train any Keras architecture instead.
    It shares its training flow with
    :class:`~sk_keras_digits.KerasDigitClassifier`: the two differ only in
    their targets, loss, output activation and score.

    Parameters
    ----------
    loss : {'squared_error', 'poisson'}, default='squared_error'
        The loss, as MLPRegressor's: half the squared error with an identity
        output, or half the Poisson deviance with an exponential output (for
        non-negative targets, such as counts). The loss reported in
        ``loss_curve_`` is MLPRegressor's: the squared error averaged over the
        targets, the Poisson deviance summed over them.

    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        The ith element is the number of neurons in the ith hidden layer.

    activation : {'identity', 'logistic', 'tanh', 'relu'}, default='relu'
        Activation of the hidden layers: Keras' ``linear``, ``sigmoid``,
        ``tanh`` and ``relu``.

    solver : {'lbfgs', 'sgd', 'adam'} or keras.optimizers.Optimizer, \
            default='adam'
        The solver for weight optimisation. ``'sgd'`` and ``'adam'`` run in a
        compiled loop of Keras' backend; ``'lbfgs'`` drives Keras-computed loss and
        gradients with SciPy's L-BFGS-B, as MLPRegressor does with its own.
        A Keras optimizer instance (e.g. ``keras.optimizers.AdamW(1e-3,
        weight_decay=1e-4)``, with a float learning rate or a
        ``LearningRateSchedule``) trains in the same compiled loop. It is
        never built or changed: every fit starts a fresh optimizer of its
        class and ``get_config()``. It owns its learning rate, schedule and
        moments, so the built-in solvers' settings (``learning_rate_init``,
        ``power_t``, ``momentum``, ``nesterovs_momentum``, ``beta_1``,
        ``beta_2``, ``epsilon``) are unused, as MLPRegressor leaves
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
        Set aside ``validation_fraction`` of the training data and stop when
        its R^2 (weighted by ``sample_weight``, averaged over the targets)
        fails to improve by ``tol`` for ``n_iter_no_change`` epochs; the best
        weights are kept. Stochastic solvers only.

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
        predictions, its last layer applying ``output_activation``
        (``'linear'`` for ``loss='squared_error'``, ``'exponential'`` for
        ``loss='poisson'``); fit probes the new network and refuses one whose
        outputs cannot be such predictions (negative values under
        ``'poisson'``), or that has no trainable weights. Prefer a
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
        early stopping, ``val_r2``. ``model.stop_training = True`` stops
        training. Batch-level hooks are not called: batches run inside the
        compiled loop. After fit each callback holds the model it held before
        (normally none): its own counters and state are kept. The model has
        no optimizer (the solver runs in the compiled loop): callbacks that
        set its learning rate (``ReduceLROnPlateau``,
        ``LearningRateScheduler``) are refused with a ``ValueError``.

    Attributes
    ----------
    loss_ : float
        The loss at the end of training.

    best_loss_ : float or None
        The lowest training loss reached; None with early stopping.

    loss_curve_ : list of float
        The loss at each epoch (or ``'lbfgs'`` iteration).

    validation_scores_ : list of float or None
        Validation R^2 at each epoch with early stopping, else None (NaN for
        an epoch whose predictions are not finite).

    best_validation_score_ : float or None
        Best validation R^2 with early stopping, else None.

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
        Number of outputs: the number of target columns.

    out_activation_ : str
        Output activation: ``'identity'`` (squared error) or ``'exp'``
        (Poisson).

    model_ : keras.Model
        The trained network. It is built from the fitted weights on first
        access (and after unpickling); changing it does not change the
        estimator.

    history_ : dict of list
        Per-epoch training history in Keras' ``History.history`` form:
        ``loss`` and ``learning_rate``, plus ``val_r2`` with early stopping.

    See Also
    --------
    sklearn.neural_network.MLPRegressor : The NumPy multi-layer perceptron
        this estimator mirrors.
    KerasDigitClassifier : The classifier on the same base.

    Notes
    -----
    Training runs whole epochs inside one compiled program of Keras' backend,
    reused by every later fit in the process (see
    :class:`~sk_keras_digits.KerasDigitClassifier`'s notes, which hold here
    too). The default network computes in float64, or float32 when ``X`` is
    float32; predictions are float32 when the network and ``X`` both are,
    float64 otherwise, as MLPRegressor's.

    A call to fit that fails (bad input, a diverging loss) leaves the estimator
    exactly as it was. With early stopping a loss that diverges after an
    epoch with a finite validation score does not fail: training stops, with
    a ConvergenceWarning, and the estimator keeps the weights of the best
    validation score, as MLPRegressor does. If no epoch reached a finite
    validation score, the fit raises a ValueError (where MLPRegressor would
    keep its initial weights).

    ``predict`` returns an array of shape ``(n_samples,)`` for a 1-d ``y``
    (or a single target column), ``(n_samples, n_targets)`` otherwise.

    Examples
    --------
    >>> from sklearn.compose import TransformedTargetRegressor
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sk_keras_digits import KerasDigitRegressor
    >>> X, y = load_diabetes(return_X_y=True)
    >>> network = KerasDigitRegressor(
    ...     hidden_layer_sizes=(15,), solver="lbfgs", alpha=10.0, random_state=0
    ... )
    >>> reg = TransformedTargetRegressor(  # scale X and y
    ...     make_pipeline(StandardScaler(), network), transformer=StandardScaler()
    ... ).fit(X[:300], y[:300])
    >>> reg.predict(X[300:303]).shape
    (3,)
    >>> round(reg.score(X[300:], y[300:]), 2)
    0.51
    """

    _numeric_targets = True

    _parameter_constraints: dict = {
        **BaseKerasMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson"})],
    }

    def __init__(
        self,
        loss="squared_error",
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
        self.loss = loss
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

        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            The target values (non-negative for ``loss='poisson'``).

        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative sample weights; a weight of k counts a sample k times.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._transaction(X, y, sample_weight, incremental=False)

    @available_if(lambda estimator: estimator._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Update the network with one epoch over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            The target values.

        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative sample weights.

        Returns
        -------
        self : object
            The updated estimator.
        """
        if self.early_stopping:
            # As MLPRegressor: one epoch per call leaves no room for a
            # validation split.
            raise ValueError("partial_fit does not support early_stopping=True")
        return self._transaction(X, y, sample_weight, incremental=True)

    # -- targets ---------------------------------------------------------------
    def _encode_targets(self, y, state, first_pass, incremental, classes):
        """The target encoding of this fit, checking ``y`` against a previous one."""
        if first_pass:
            return RegressionTargets.fit(y, self.loss)
        targets = state.labels
        if targets.loss != self.loss:
            call = "partial_fit" if incremental else "fit with warm_start=True"
            raise ValueError(
                f"loss={self.loss!r} is not the loss the estimator was fitted "
                f"with ({targets.loss!r}): {call} continues that fit and cannot "
                "change its loss. Call fit with warm_start=False to start afresh."
            )
        targets.check(y)
        return targets

    # -------------------------------------------------------------- predict
    def predict(self, X):
        """Predict using the network.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_targets)
            The predicted values: float32 when the network and ``X`` are
            float32, float64 otherwise.
        """
        X = self._validate_for_predict(X)
        return self._state.labels.decode(self._forward(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.target_tags.multi_output = True
        # The Poisson deviance is defined for non-negative targets only.
        tags.target_tags.positive_only = self.loss == "poisson"
        # In its default 200 iterations, the Poisson loss does not reach R^2 0.5
        # on scikit-learn's check data (whose targets it shifts to >= 1): 0.38,
        # as MLPRegressor's (docs/regression.rst).
        tags.regressor_tags.poor_score = self.loss == "poisson"
        return tags
