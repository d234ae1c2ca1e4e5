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

import contextlib

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

            _refuse_optimizer_callbacks(keras, estimator.callbacks)
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
            try:
                with _no_optimizer_explained():
                    self.callbacks.on_train_begin()
                    self.callbacks.on_epoch_begin(0)
            except BaseException:
                self.detach()
                raise

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
        with _no_optimizer_explained():
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
            with _no_optimizer_explained():
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


#: What to use instead of a callback that sets the optimizer's learning rate.
_LEARNING_RATE_INSTEAD = (
    "For a learning rate that changes during training use "
    "learning_rate='adaptive' or 'invscaling' (solver='sgd'), or a Keras "
    "optimizer with a learning-rate schedule "
    "(solver=keras.optimizers.SGD(learning_rate=schedule))."
)


def _refuse_optimizer_callbacks(keras, callbacks):
    """Refuse, before training, Keras' callbacks that set the optimizer's
    learning rate: the solver runs inside the compiled program."""
    setting = (keras.callbacks.ReduceLROnPlateau, keras.callbacks.LearningRateScheduler)
    refused = [type(c).__name__ for c in callbacks if isinstance(c, setting)]
    if refused:
        raise ValueError(
            f"callbacks holds {', '.join(refused)}, which set the Keras model's "
            "optimizer's learning rate; a fit trains inside a compiled program, "
            f"and its callbacks see a model without an optimizer. "
            f"{_LEARNING_RATE_INSTEAD}"
        )


@contextlib.contextmanager
def _no_optimizer_explained():
    """A callback reading ``model.optimizer`` fails with a ValueError that says
    why the model it sees has none."""
    try:
        yield
    except AttributeError as exc:
        if "optimizer" not in str(exc):
            raise
        raise ValueError(
            f"A callback in callbacks reads the Keras model's optimizer ({exc}); "
            "a fit trains inside a compiled program, and its callbacks see a "
            "model without an optimizer (they get the epoch's loss, learning "
            f"rate and validation score in logs). {_LEARNING_RATE_INSTEAD}"
        ) from exc
