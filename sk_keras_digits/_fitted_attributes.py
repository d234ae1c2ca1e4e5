"""MLP's fitted attributes, as read-only views of the one fitted state.

:class:`FittedAttributes` is the estimators' mixin for them. Each attribute
reads the estimator's ``_state`` (a :class:`~sk_keras_digits._state.FittedState`,
which only fit, partial_fit and load produce): nothing is stored twice, and
an attribute cannot be assigned apart from the others. Before a fit, each
raises scikit-learn's ``NotFittedError`` (an ``AttributeError``, so
``hasattr`` is False). They are documented in each estimator's Attributes
section; their own docstrings are what ``help`` and numpydoc show.
"""

from sklearn.utils.validation import check_is_fitted


class FittedAttributes:
    """The fitted attributes MLPClassifier and MLPRegressor have, and ``model_``.

    The class using it keeps the fitted state in ``_state`` and gives the
    network in ``_get_network()``.
    """

    def _fitted(self):
        check_is_fitted(self)
        return self._state

    def __sklearn_is_fitted__(self):
        return getattr(self, "_state", None) is not None

    @property
    def n_outputs_(self):
        """Number of outputs of the network."""
        return self._fitted().labels.n_outputs

    @property
    def out_activation_(self):
        """Name of the output layer's activation, as MLP names it."""
        return self._fitted().labels.out_activation

    @property
    def coefs_(self):
        """Kernels, layer by layer: ``coefs_[i]`` maps layer ``i`` to ``i + 1``.

        For a custom network: its trainable weights of rank 2 or more.
        """
        return self._fitted().weights.coefs

    @property
    def intercepts_(self):
        """Biases, layer by layer: ``intercepts_[i]`` is added in layer ``i + 1``.

        For a custom network: its trainable weights of rank 1.
        """
        return self._fitted().weights.intercepts

    @property
    def n_layers_(self):
        """Number of layers, input and output included (``len(coefs_) + 1``)."""
        return len(self._fitted().weights.coefs) + 1

    @property
    def t_(self):
        """Number of training samples seen by the stochastic solver."""
        return int(self._fitted().training.progress.samples_seen)

    @property
    def n_iter_(self):
        """Epochs (or ``'lbfgs'`` iterations) run by the last call to fit."""
        return self._fitted().history.n_iter

    @property
    def loss_(self):
        """The loss at the end of training."""
        return self._fitted().history.loss

    @property
    def loss_curve_(self):
        """The loss at each epoch (or ``'lbfgs'`` iteration), as a list."""
        return list(self._fitted().history.losses)

    @property
    def best_loss_(self):
        """The lowest training loss reached; None with early stopping."""
        return self._fitted().best_loss

    @property
    def validation_scores_(self):
        """The validation score at each epoch with early stopping, else None."""
        return self._fitted().validation_scores

    @property
    def best_validation_score_(self):
        """The best validation score with early stopping, else None."""
        return self._fitted().best_validation_score

    @property
    def history_(self):
        """Per-epoch training history, in Keras' ``History.history`` form."""
        return self._fitted().keras_history

    @property
    def model_(self):
        """The trained ``keras.Model``, built from the fitted weights on first access.

        Changing it does not change the estimator.
        """
        check_is_fitted(self)
        network = self._get_network()  # forgets a model of an older network
        if getattr(self, "_model", None) is None:
            self._model = network.build_model(self._state.weights)
        return self._model

    # MLP's private attributes that code written against it reads (scikit-learn's
    # own tests do): views too. Absent, as in MLP, after a fit with lbfgs.
    @property
    def _no_improvement_count(self):
        count = self._fitted().no_improvement_count
        if count is None:
            raise AttributeError(
                f"{type(self).__name__} has no _no_improvement_count: it exists, "
                "as in MLP, after a fit with a stochastic solver (the last fit "
                "used lbfgs)."
            )
        return count

    @property
    def _optimizer(self):
        from ._solvers import fitted_optimizer

        optimizer = fitted_optimizer(
            self._fitted().training, self.get_params(deep=False)
        )
        if optimizer is None:
            raise AttributeError(
                f"{type(self).__name__} has no _optimizer: it exists, as in MLP, "
                "after a fit with solver='sgd' or 'adam' (the last fit used lbfgs "
                "or a Keras optimizer)."
            )
        return optimizer
