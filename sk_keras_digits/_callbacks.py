"""Per-epoch work done in Python: verbose output and Keras callbacks.

Batches run inside the compiled training loop; when there is per-epoch work to
do in Python, the loop hands control back after every epoch and
:class:`EpochReporter` does it: it prints MLP's progress lines and
drives Keras callbacks (``on_train_begin``, ``on_epoch_begin``,
``on_epoch_end``, ``on_train_end``) on a Keras model kept in step with the
trained weights. When training ends, or fails, each callback gets back the
model it had before (normally none): a fitted estimator's callbacks hold no
Keras model, so cloning or copying it stays cheap.
"""

from ._backends import import_keras
from ._network import assign_variables, variable_values
from ._state import LEARNING_RATE_TOO_SMALL, RUNNING


class EpochReporter:
    """Per-epoch work done in Python: verbose output and Keras callbacks.

    Active only when there is such work, since it makes the compiled loop
    return to Python after every epoch.
    """

    def __init__(self, estimator, network, weights, n_epochs, n_samples, batch_size):
        self.estimator = estimator
        self.network = network
        self.verbose = estimator.verbose
        self.callbacks = None
        self.model = None
        self.active = bool(self.verbose) or bool(estimator.callbacks)
        if estimator.callbacks:
            keras = import_keras()

            self._previous_models = [
                (callback, callback.model) for callback in estimator.callbacks
            ]
            self.model = network.build_model(weights)
            self.model.stop_training = False
            self.callbacks = keras.callbacks.CallbackList(
                list(estimator.callbacks), model=self.model
            )
            self.callbacks.set_params(
                {
                    "epochs": n_epochs,
                    "steps": -(-n_samples // batch_size),
                    "verbose": int(bool(self.verbose)),
                }
            )
            self.callbacks.on_train_begin()
            self.callbacks.on_epoch_begin(0)

    def __call__(self, epoch, log, weights):
        estimator = self.estimator
        if self.verbose:
            print(f"Iteration {epoch + 1}, loss = {log.losses[-1]:.8f}")
            if estimator.early_stopping:
                print(f"Validation score: {log.scores[-1]:f}")
            if log.triggered[-1]:
                self._print_trigger(log)
        if self.callbacks is None:
            return False
        logs = {"loss": log.losses[-1], "learning_rate": log.learning_rates[-1]}
        if estimator.early_stopping:
            logs[f"val_{self.network.loss.score_name}"] = log.scores[-1]
        assign_variables(self.model, weights)
        self.callbacks.on_epoch_end(epoch, logs)
        if self.model.stop_training:
            return True
        self.callbacks.on_epoch_begin(epoch + 1)
        return False

    def _print_trigger(self, log):
        estimator = self.estimator
        what = (
            "Validation score did not improve"
            if estimator.early_stopping
            else "Training loss did not improve"
        )
        msg = (
            f"{what} more than tol={estimator.tol:f} for "
            f"{estimator.n_iter_no_change} consecutive epochs."
        )
        if log.status == RUNNING:
            print(f"{msg} Setting learning rate to {log.learning_rates[-1]:f}")
        elif log.status == LEARNING_RATE_TOO_SMALL:
            print(f"{msg} Learning rate too small. Stopping.")
        else:
            print(f"{msg} Stopping.")

    def finish(self, weights):
        """End the callbacks and return the weights they leave the model with."""
        if self.callbacks is None:
            return weights
        assign_variables(self.model, weights)
        try:
            self.callbacks.on_train_end()
        finally:
            self.detach()
        return variable_values(self.model)

    def detach(self):
        """Give each callback back the model it had before training."""
        if self.callbacks is None:
            return
        for callback, model in self._previous_models:
            callback.set_model(model)
