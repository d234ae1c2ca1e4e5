"""The training flow shared by the estimators: :class:`BaseKerasMLP`.

As scikit-learn's ``BaseMultilayerPerceptron``, the base class holds what
does not depend on the kind of target: the parameters of the network and the
solvers, the fit flow (validation, the network, the solvers, the stopping
rules, the transaction that leaves a failed fit without effect) and
prediction of the network's outputs. The fitted attributes, views of the one
fitted state, come from its mixin
:class:`~sk_keras_digits._fitted_attributes.FittedAttributes`.
An estimator adds its target encoding through three hooks,
:meth:`~BaseKerasMLP._encode_targets`, :meth:`~BaseKerasMLP._weigh_samples`
and :meth:`~BaseKerasMLP._stratification`, and its own ``fit``,
``partial_fit`` and ``predict``.

Persistence reads and restores an estimator only through two hooks,
:meth:`~BaseKerasMLP._fitted_record` and
:meth:`~BaseKerasMLP._from_fitted_record`.
"""

import math
from abc import ABCMeta, abstractmethod
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import assert_all_finite, check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, Options, StrOptions
from sklearn.utils.validation import (
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from ._casting import cast_in_range, densified, stored_values
from ._fitted_attributes import FittedAttributes
from ._inference import network_outputs
from ._network import CustomNetwork, DenseNetwork
from ._sample_weights import check_sample_weight
from ._state import DIVERGED, RUNNING, FittedEstimator, FittedState
from ._training_config import Hyper, TrainingConfig, TrainingData
from ._warnings import warn

#: The dtypes the network computes in (an input of another is converted).
_FLOAT_DTYPES = (np.float64, np.float32)

#: Attributes caching Keras objects: rebuilt on demand, never pickled.
KERAS_CACHE = ("_network", "_model")


def _unchecked_cause(names):
    """The cause of a failure on inputs ``names`` whose check was skipped."""
    verb = "holds" if len(names) == 1 else "hold"
    return (
        f"{' and '.join(names)} {verb} NaN or infinite values (sklearn."
        "config_context(assume_finite=True) skipped their check). Remove or "
        "impute them."
    )


def _non_finite(data):
    """The names of ``data``'s arrays holding NaN or infinite values."""
    if data is None:
        return []
    names = ("X", "y", "sample_weight")
    return [
        name
        for name, values in zip(names, data, strict=True)
        if not np.isfinite(stored_values(values)).all()
    ]


class BaseKerasMLP(FittedAttributes, BaseEstimator, metaclass=ABCMeta):
    """Base class of the estimators: a Keras network trained as MLP's twin.

    Warning: This class should not be used directly. Use derived classes
    instead.
    """

    #: Whether ``y`` must be numeric (a regressor's targets), as
    #: ``validate_data``'s ``y_numeric``.
    _numeric_targets = False

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
    }

    # ------------------------------------------------------------------ fit flow
    def _transaction(self, X, y, sample_weight, incremental, classes=None):
        """Fit, and on any error leave the estimator exactly as it was.

        A fit writes its results in one step at its end (:meth:`_fit`), so a
        thread predicting meanwhile sees the previous fit until then; on an
        error only the caches it filled are dropped again.
        """
        before = dict(self.__dict__)
        try:
            return self._fit(X, y, sample_weight, incremental, classes)
        except BaseException:
            self.__dict__.update(before)
            for name in set(self.__dict__) - set(before):
                self.__dict__.pop(name, None)
            raise

    def _fit(self, X, y, sample_weight, incremental, classes):
        hidden = self._hidden_layer_sizes()
        state = getattr(self, "_state", None)
        first_pass = state is None or (not self.warm_start and not incremental)
        # The input's description (n_features_in_, feature_names_in_) is
        # checked, and on a first pass recorded, on a copy: this estimator
        # changes only once the fit has succeeded.
        described = object.__new__(type(self))
        described.__dict__.update(self.__dict__)
        X, y = validate_data(
            described,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            dtype=_FLOAT_DTYPES,
            y_numeric=self._numeric_targets,
            reset=first_pass,
        )
        if not first_pass:
            # A continuing fit trains the fitted weights in their own dtype,
            # whatever X's, as MLP's in-place updates keep its weights'.
            X = cast_in_range(
                X,
                state.weights.params[0].dtype,
                "X",
                "the fitted network that warm_start and partial_fit continue "
                "computes in it",
                "Scale X, or fit afresh.",
            )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        sample_weight = check_sample_weight(sample_weight, X)
        labels = self._encode_targets(y, state, first_pass, incremental, classes)
        sample_weight = self._weigh_samples(sample_weight, y, labels, incremental)
        Y = labels.encode(y, X.dtype)
        X = densified(X)

        rng = self._random_state()
        network = self._network_for(X, labels, hidden, first_pass, rng)
        if first_pass:
            state = FittedState.initial(
                labels,
                network.initial_weights(rng),
                self.learning_rate_init,
                self.early_stopping,
            )
        data = TrainingData(X, Y, sample_weight)
        if self.solver == "lbfgs":
            state = self._fit_lbfgs(network, state, data)
        else:
            state = self._fit_stochastic(network, state, data, rng, incremental)
        if not state.weights.all_finite():
            raise ValueError(
                "Solver produced non-finite parameter weights. The input data may "
                f"contain large values and need to be preprocessed. "
                f"{self._divergence_remedy(data=data)}. The estimator keeps its "
                "previous state."
            )
        fitted = {"_state": state, "_network": network, "_model": None}
        fitted["n_features_in_"] = described.n_features_in_
        names = getattr(described, "feature_names_in_", None)
        if names is not None:
            fitted["feature_names_in_"] = names
        self.__dict__.update(fitted)  # one step, under the GIL
        if names is None:
            self.__dict__.pop("feature_names_in_", None)
        return self

    def _check_solver(self):
        """True if ``partial_fit`` is available: the solver is stochastic."""
        if isinstance(self.solver, str) and self.solver == "lbfgs":
            raise AttributeError(
                "partial_fit is only available for stochastic optimizers. "
                f"solver={self.solver!r} is not stochastic."
            )
        return True

    # -- target hooks (the estimator's kind) -----------------------------------
    @abstractmethod
    def _encode_targets(self, y, state, first_pass, incremental, classes):
        """The encoding of ``y`` for this fit (checked against a previous one).

        It has ``encode(y, dtype)``, ``n_outputs`` and ``out_activation``.
        """

    def _weigh_samples(self, sample_weight, y, targets, incremental):
        """``sample_weight`` as the loss weighs it (a classifier's class weights)."""
        return sample_weight

    def _stratification(self, data, targets):
        """What the early-stopping split of ``data`` (a TrainingData) is
        stratified on (None: not at all)."""
        return None

    # -- validation ------------------------------------------------------------
    def _hidden_layer_sizes(self):
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, np.ndarray) and sizes.ndim == 0:
            sizes = sizes.item()  # a 0-d array: one width, as an int would be
        if not hasattr(sizes, "__iter__"):
            sizes = [sizes]
        sizes = list(sizes)
        # A bool is an Integral, but no layer width (MLPClassifier fails on it).
        widths = all(
            isinstance(s, Integral) and not isinstance(s, bool) and s > 0 for s in sizes
        )
        if not widths:
            raise ValueError(
                "hidden_layer_sizes must be positive integers (not bools), got "
                f"{self.hidden_layer_sizes!r}."
            )
        return [int(s) for s in sizes]

    def _random_state(self):
        if self.random_state is None:
            # Fresh entropy from the OS: NumPy's global RandomState is the
            # user's, and is neither read nor advanced.
            return np.random.RandomState(np.random.SeedSequence().generate_state(1))
        return check_random_state(self.random_state)

    # -- network -----------------------------------------------------------------
    def _network_for(self, X, labels, hidden, first_pass, rng):
        """The network this fit trains: a new one, or the fitted one's."""
        dtype = X.dtype.name
        if first_pass:
            units = [X.shape[1], *hidden, labels.n_outputs]
            if self.network is None:
                return self._new_network(units, labels.out_activation, dtype)
            seed = int(rng.randint(np.iinfo(np.int32).max))
            network = self._new_network(units, labels.out_activation, dtype, seed)
            network.check_outputs(X)
            return network
        if self.network is None:
            units = self._fitted_units()
            if hidden != units[1:-1]:
                raise ValueError(
                    f"hidden_layer_sizes={self.hidden_layer_sizes!r}, but the fitted "
                    f"network has hidden layers of widths {tuple(units[1:-1])}: "
                    "warm_start and partial_fit continue the fitted network. Set "
                    f"hidden_layer_sizes={tuple(units[1:-1])!r}, or warm_start=False "
                    "and fit to train a new network."
                )
            return self._new_network(units, labels.out_activation, dtype)
        cached = getattr(self, "_network", None)
        network = self._get_network()
        if network is not cached:
            network.build_model(self._state.weights)
        return network

    def _new_network(self, units, out_activation, dtype, seed=0):
        """A network of these layer widths (input and output included).

        The default network is MLPClassifier's; a custom one is built by the
        user's ``network`` under ``seed``.
        """
        if self.network is None:
            return DenseNetwork(units, self.activation, out_activation, dtype)
        network = CustomNetwork(
            self.network, units[0], units[-1], out_activation, dtype
        )
        network.build(seed)
        return network

    def _fitted_units(self):
        """Layer widths of the fitted network, input and output included."""
        if self.network is not None:
            return [self.n_features_in_, self._state.labels.n_outputs]
        weights = self._state.weights
        coefs = weights.coefs
        dense = not weights.buffers and all(
            c.ndim == 2 and b.shape == (c.shape[1],)
            for c, b in zip(coefs, weights.intercepts, strict=False)
        )
        if not dense or len(weights.params) % 2:
            raise self._changed_network_error("dense layers")
        return [c.shape[0] for c in coefs] + [coefs[-1].shape[1]]

    # -- solvers -------------------------------------------------------------------
    def _fit_lbfgs(self, network, state, data):
        from ._training import train_lbfgs  # the backend loads here

        if isinstance(network, CustomNetwork):
            network.check_training_memory(
                len(data.X),
                "lbfgs computes on every row at once: use solver='adam' or "
                "'sgd' with a batch_size that fits.",
            )

        run = train_lbfgs(
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
            raise self._diverged_error(len(run.losses), data=data)
        n_iter = min(int(result.nit), self.max_iter)
        if result.status != 0:
            # MLPClassifier's text (scikit-learn's _check_optimize_result).
            text = (
                f"lbfgs failed to converge after {n_iter} iteration(s) "
                f"(status={result.status}):\n{result.message}\n"
            )
            if n_iter == self.max_iter:
                text += (
                    "\nIncrease the number of iterations to improve the "
                    f"convergence (max_iter={self.max_iter})."
                )
            text += (
                "\nYou might also want to scale the data as shown in:\n"
                "    https://scikit-learn.org/stable/modules/preprocessing.html"
            )
            warn(text, ConvergenceWarning)
        return state.after_lbfgs(run.weights, run.losses, float(result.fun), n_iter)

    def _stochastic_config(self, batch_size):
        """The solver object and the numbers of this fit's training loop."""
        from ._solvers import solver_for

        solver, numbers = solver_for(self.get_params(deep=False))
        hyper = Hyper(
            alpha=float(self.alpha),
            tol=float(self.tol),
            n_iter_no_change=float(self.n_iter_no_change),
            solver=numbers,
        )
        return TrainingConfig(
            solver=solver,
            hyper=hyper,
            batch_size=batch_size,
            shuffle=bool(self.shuffle),
            early_stopping=bool(self.early_stopping),
        )

    def _batch_size(self, n_samples):
        if isinstance(self.batch_size, str):  # "auto"
            return min(200, n_samples)
        if self.batch_size > n_samples:
            # MLP's text first, so that a filter of MLP's warning takes ours.
            warn(
                "Got `batch_size` less than 1 or larger than sample size. It is "
                f"going to be clipped (batch_size={self.batch_size}, "
                f"{n_samples} samples)."
            )
        return int(np.clip(self.batch_size, 1, n_samples))

    def _fit_stochastic(self, network, state, data, rng, incremental):
        from ._callbacks import EpochReporter
        from ._training import train_stochastic

        validation = None
        if self.early_stopping:
            data, validation = self._validation_split(data, state, rng)
        n_samples = data.X.shape[0]
        config = self._stochastic_config(self._batch_size(n_samples))
        if isinstance(network, CustomNetwork):
            # A batch's outputs and gradients; the validation rows' outputs
            # (no gradient) at once.
            held = len(validation.X) // 2 if validation is not None else 0
            network.check_training_memory(
                max(config.batch_size, held),
                f"Lower batch_size (now {config.batch_size})"
                + (" or validation_fraction" if held else "")
                + ".",
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
            self._check_carried_state(config.solver, start)
        n_epochs = 1 if incremental else self.max_iter
        # Drawn only to shuffle: without shuffling, a RandomState instance the
        # user passed ends where MLPClassifier leaves it.
        seed = int(rng.randint(np.iinfo(np.int32).max)) if self.shuffle else 0
        reporter = EpochReporter(
            self, network, start.weights, n_epochs, n_samples, config.batch_size
        )
        try:
            end, log = train_stochastic(
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
        kept_best = self.early_stopping and np.isfinite(end.progress.best_score)
        if log.status == DIVERGED and not kept_best:
            reporter.detach()
            raise self._diverged_error(log.n_epochs, start.progress.learning_rate, data)
        weights = end.weights
        if self.early_stopping:
            weights = end.progress.best_weights
        # Counted here, exactly: the program counts in the fit's dtype, whose
        # float32 cannot count past 2**24 samples one by one (MLP's t_ is an int).
        samples_seen = start.progress.samples_seen + log.n_epochs * n_samples
        end = end._replace(
            weights=reporter.finish(weights),
            progress=end.progress._replace(
                best_weights=None, samples_seen=float(samples_seen)
            ),
        )
        if log.status == DIVERGED:
            # The solver's moments diverged with the weights not kept: the
            # next partial_fit starts a fresh solver, as the next fit does.
            end = end._replace(solver=None)
        if log.status == DIVERGED:
            # As MLP: early stopping keeps the best validated weights, finite.
            warn(
                f"Training diverged: the loss became NaN or infinite after "
                f"{log.n_epochs} iteration(s). Kept the weights of the best "
                f"validation score ({end.progress.best_score:.6g}). "
                f"{self._divergence_remedy(data=data)}.",
                ConvergenceWarning,
            )
        elif log.interrupted:
            warn("Training interrupted by user.")
        elif (
            not incremental and log.status == RUNNING and log.n_epochs == self.max_iter
        ):
            warn(
                f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached "
                "and the optimization hasn't converged yet.",
                ConvergenceWarning,
            )
        return state.after_epochs(end, log, scored=self.early_stopping)

    @staticmethod
    def _check_carried_state(solver, start):
        """Refuse a state carried by ``partial_fit`` that ``solver`` did not make.

        A solver changed between calls (``set_params``) would otherwise fail
        deep in TensorFlow or, worse, load one optimizer's moments into
        another's slots.
        """
        try:
            solver.check_state(start.solver, start.weights)
        except ValueError as exc:
            raise ValueError(
                f"The solver state carried from the previous call "
                f"({type(start.solver).__name__}) does not fit solver="
                f"{solver.label}: partial_fit cannot change the solver between "
                f"calls. Call fit to start afresh. ({exc})"
            ) from exc

    def _validation_split(self, data, state, rng):
        """Set aside ``validation_fraction`` of the data for early stopping.

        The split is MLP's: stratified on :meth:`_stratification` (a binary
        classifier's labels), where a class with a single sample, or fewer
        validation samples than classes, is an error, as in MLPClassifier.
        """
        split = dict(random_state=rng, test_size=self.validation_fraction)
        stratify = self._stratification(data, state.labels)
        try:
            parts = train_test_split(*data, stratify=stratify, **split)
        except ValueError as exc:
            if stratify is not None:
                raise ValueError(
                    f"{exc} (early_stopping=True sets aside validation_fraction="
                    f"{self.validation_fraction} of the samples, stratified by "
                    "class as MLPClassifier's split is.) Give each class more "
                    "samples, change validation_fraction or set "
                    "early_stopping=False."
                ) from exc
            n_samples = data.X.shape[0]
            n_validation = math.ceil(self.validation_fraction * n_samples)
            if n_validation < n_samples:
                problem, advice = "no validation samples", "Increase"
            else:
                problem, advice = "no training samples", "Decrease"
            raise ValueError(
                f"validation_fraction={self.validation_fraction} leaves "
                f"{problem} of {n_samples} for early_stopping ({exc}). "
                f"{advice} validation_fraction or set early_stopping=False."
            ) from exc
        if parts[1].shape[0] < 2:
            raise ValueError(
                "The validation set is too small. Increase 'validation_fraction' "
                "or the size of your dataset. (early_stopping=True holds out "
                f"validation_fraction={self.validation_fraction} of "
                f"{data.X.shape[0]} samples: {parts[1].shape[0]}, where its "
                "score needs 2.)"
            )
        return TrainingData(*parts[0::2]), TrainingData(*parts[1::2])

    def _diverged_error(self, epoch, learning_rate=None, data=None):
        hint = (
            " Does the network's last layer apply the output activation?"
            if self.network is not None
            else ""
        )
        return ValueError(
            "Solver produced non-finite parameter weights. The input data may "
            "contain large values and need to be preprocessed. Training diverged: "
            f"the loss became NaN or infinite after {epoch} iteration(s). "
            f"{self._divergence_remedy(learning_rate, data)}.{hint} The estimator "
            "keeps its previous state."
        )

    def _divergence_remedy(self, learning_rate=None, data=None):
        """What to change after a fit from ``learning_rate`` on ``data`` diverged.

        Non-finite values in ``data`` (let through by ``assume_finite``) are
        the cause, if any. lbfgs has no learning rate. ``partial_fit`` goes on
        at the rate of its earlier calls (a loaded file's), which
        ``learning_rate_init`` no longer sets.
        """
        unchecked = _non_finite(data)
        if unchecked:
            return _unchecked_cause(unchecked).rstrip(".")
        scale = "scale X and y" if self._numeric_targets else "scale X"
        if isinstance(self.solver, str) and self.solver == "lbfgs":
            return f"{scale.capitalize()}, or lower the penalty (alpha={self.alpha})"
        carried = isinstance(self.solver, str) and learning_rate is not None
        if carried and learning_rate > self.learning_rate_init * (1 + 1e-6):
            return (
                "Lower the learning rate: partial_fit went on at its earlier "
                f"calls' rate, {learning_rate:.6g}, above learning_rate_init="
                f"{self.learning_rate_init} (fit afresh to start from "
                f"learning_rate_init), or {scale}"
            )
        return f"Lower the learning rate ({self._learning_rate_setting()}) or {scale}"

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
        network = self._get_network()  # checks the parameters' network holds it
        if self.network is None and X.shape[1] != state.weights.coefs[0].shape[0]:
            # A fit in another thread replaced the model since X was checked:
            # this call comes after it, as validate_data would now say.
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__} is "
                f"expecting {state.weights.coefs[0].shape[0]} features as input."
            )
        outputs = network_outputs(
            X,
            state.weights,
            activation=self.activation,
            out_activation=state.labels.out_activation,
            network=None if self.network is None else network,
        )
        if not np.isfinite(outputs).all():
            rows = np.flatnonzero(~np.isfinite(outputs).all(axis=1))
            values = stored_values(X)
            if not np.isfinite(values).all():  # let through by assume_finite
                cause = _unchecked_cause(["X"])
            else:
                cause = (
                    f"X holds values too large for {outputs.dtype} arithmetic "
                    f"in this network (largest |X| = {abs(values).max():.3g}). "
                    "Scale X, for fitting and predicting alike (a StandardScaler "
                    "in a Pipeline, say)."
                )
            raise ValueError(
                f"The network's output is not finite for {rows.size} sample(s) of "
                f"X (first: row {rows[0]}): {cause}"
            )
        return outputs

    def _get_network(self):
        """The fitted network object (rebuilt after unpickling or loading).

        A custom network is rebuilt too once its builder is not the one that
        built it (``set_params(network=...)`` or ``network__units=...``), so
        that an estimator predicts the same before and after pickling; the
        rebuilt network must hold the fitted weights. The default network is
        rebuilt with another ``activation``, which predictions use as
        MLPClassifier's do, so that ``model_`` computes them too.
        """
        network = getattr(self, "_network", None)
        if network is None or not self._current(network):
            state = self._state
            network = self._new_network(
                self._fitted_units(),
                state.labels.out_activation,
                state.weights.params[0].dtype.name,
            )
            if self.network is not None:  # (the default one's: _fitted_units)
                self._check_holds_fitted_weights(network)
            self._network = network
            self._model = None
        return network

    def _current(self, network):
        """Whether ``network`` is the one the current parameters build."""
        if self.network is None:
            return (
                type(network) is DenseNetwork and network.activation == self.activation
            )
        return type(network) is CustomNetwork and network.built_by(self.network)

    def _check_holds_fitted_weights(self, network):
        """Refuse a rebuilt network whose variables differ from the fit's."""
        built = [shape for shape, _ in network.param_shapes + network.buffer_shapes]
        if built != self._fitted_shapes():
            raise self._changed_network_error(f"variables of shapes {built}")

    def _fitted_shapes(self):
        weights = self._state.weights
        return [p.shape for p in weights.params] + [b.shape for b in weights.buffers]

    def _changed_network_error(self, built):
        return ValueError(
            f"network={self.network!r} now builds a network with {built}, "
            f"but the fitted weights have shapes {self._fitted_shapes()}: the "
            "network parameter changed since the fit. Set it back, or fit again "
            "(with warm_start=False)."
        )

    def _validate_for_predict(self, X):
        check_is_fitted(self)
        if (
            type(X) is np.ndarray
            and X.ndim == 2
            and X.dtype in _FLOAT_DTYPES
            and X.shape[0] > 0
            and X.shape[1] == self.n_features_in_
            and not hasattr(self, "feature_names_in_")
        ):
            # A float matrix of the fitted width, from a fit without feature
            # names: validate_data would check its finiteness and return it as
            # it is. Checked here directly, since its other checks (data
            # frames, feature names, conversions) take most of a small
            # prediction's time (65 of 85 us for one row).
            assert_all_finite(X, estimator_name=type(self).__name__, input_name="X")
            return X
        # dtype="numeric", as MLPClassifier's predict: strings are refused
        # (a list of float dtypes would convert them silently).
        X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)
        if X.dtype in _FLOAT_DTYPES:
            return X
        # Other numbers compute as MLP's NumPy products would take them with
        # the fitted weights (float16 or bool X with float32 weights: float32).
        return X.astype(np.result_type(X.dtype, self._state.weights.params[0]))

    def __getstate__(self):
        state = dict(super().__getstate__())
        for name in KERAS_CACHE:
            state.pop(name, None)
        return state

    # -- persistence hooks ---------------------------------------------------------
    def _fitted_record(self):
        """The fitted estimator as a :class:`FittedEstimator` record.

        What a model file holds: the parameters, the input's description and
        the fitted state. Persistence reads an estimator through this alone.
        """
        check_is_fitted(self)
        return FittedEstimator(
            params=self.get_params(deep=False),
            hidden_layer_sizes=tuple(self._hidden_layer_sizes()),
            n_features_in=int(self.n_features_in_),
            feature_names_in=getattr(self, "feature_names_in_", None),
            state=self._state,
        )

    @classmethod
    def _from_fitted_record(cls, record):
        """The estimator a :class:`FittedEstimator` record describes.

        The parameters are validated as fit validates them (a TypeError or
        ValueError names the invalid one); the fitted state is taken as it
        is: checking it against the parameters is the model file's job. The
        record's ``hidden_layer_sizes`` may be None (a model file does not
        store it): the parameter gives it.
        """
        estimator = cls(**record.params)
        estimator._validate_params()
        hidden = tuple(estimator._hidden_layer_sizes())
        if record.hidden_layer_sizes is not None and hidden != tuple(
            record.hidden_layer_sizes
        ):
            raise ValueError(
                f"hidden_layer_sizes={record.hidden_layer_sizes!r} of the record "
                "is not what the parameter hidden_layer_sizes="
                f"{estimator.hidden_layer_sizes!r} gives."
            )
        estimator.n_features_in_ = record.n_features_in
        if record.feature_names_in is not None:
            estimator.feature_names_in_ = record.feature_names_in
        estimator._state = record.state
        return estimator
