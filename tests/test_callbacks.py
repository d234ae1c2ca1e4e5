"""Per-epoch Python work: MLPClassifier's verbose output and Keras callbacks."""

import io
import warnings
from contextlib import redirect_stdout

import keras
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

from sk_keras_digits import KerasDigitClassifier
from tests._helpers import QUICK


def printed(estimator, X, y):
    out = io.StringIO()
    with redirect_stdout(out), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(X, y)
    return out.getvalue().splitlines()


def test_verbose_prints_progress_as_mlpclassifier(small_digits):
    X, y = small_digits
    params = dict(QUICK, verbose=True, max_iter=3, early_stopping=True)
    lines = printed(KerasDigitClassifier(**params), X, y)
    assert lines[0].startswith("Iteration 1, loss = ")
    assert lines[1].startswith("Validation score: ")
    assert sum(line.startswith("Iteration") for line in lines) == 3


def test_verbose_output_is_mlpclassifiers_line_for_line(small_digits):
    """Without shuffling both estimators print the same lines, stop messages too."""
    X, y = small_digits
    params = dict(
        QUICK,
        verbose=True,
        shuffle=False,
        solver="sgd",
        learning_rate="adaptive",
        tol=0.05,
        n_iter_no_change=2,
        max_iter=30,
    )
    ours = printed(KerasDigitClassifier(**params), X, y)
    theirs = printed(MLPClassifier(**params), X, y)
    assert any("Setting learning rate to" in line for line in ours)
    assert [line[:20] for line in ours] == [line[:20] for line in theirs]
    assert ours[-1] == theirs[-1]


def test_keras_callbacks_are_called_and_can_stop_training(small_digits):
    X, y = small_digits
    seen = []
    logger = keras.callbacks.LambdaCallback(
        on_train_begin=lambda logs: seen.append("begin"),
        on_epoch_end=lambda epoch, logs: seen.append((epoch, dict(logs))),
        on_train_end=lambda logs: seen.append("end"),
    )
    stopper = keras.callbacks.EarlyStopping(monitor="loss", patience=0, min_delta=10)
    est = KerasDigitClassifier(callbacks=[logger, stopper], **QUICK).fit(X, y)
    assert est.n_iter_ == 2  # stopped when loss failed to drop by 10 after 1
    assert seen[0] == "begin" and seen[-1] == "end"
    epochs = [entry for entry in seen[1:-1]]
    assert [epoch for epoch, _ in epochs] == [0, 1]
    assert epochs[0][1]["loss"] == pytest.approx(est.loss_curve_[0])
    assert set(epochs[0][1]) == {"loss", "learning_rate"}


def test_callbacks_see_the_trained_weights_and_can_restore_them(small_digits):
    X, y = small_digits
    snapshots = []

    class Snapshot(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            snapshots.append([w.copy() for w in self.model.get_weights()])

    est = KerasDigitClassifier(callbacks=[Snapshot()], **dict(QUICK, max_iter=4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    np.testing.assert_array_equal(snapshots[-1][0], est.coefs_[0])
    assert not np.array_equal(snapshots[0][0], snapshots[-1][0])

    restore = keras.callbacks.EarlyStopping(
        monitor="val_accuracy", mode="max", patience=3, restore_best_weights=True
    )
    est = KerasDigitClassifier(
        callbacks=[restore],
        early_stopping=True,
        n_iter_no_change=1000,
        **dict(QUICK, max_iter=60, solver="sgd", learning_rate_init=0.5),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    assert est.n_iter_ < 60
    assert np.isfinite(est.predict_proba(X)).all()


class CountingCallback(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = 0

    def on_epoch_end(self, epoch, logs=None):
        self.epochs += 1


def test_callbacks_hold_no_model_after_fit_and_copies_stay_cheap(small_digits):
    import copy

    from sklearn.base import clone

    X, y = small_digits
    counter = CountingCallback()
    history = keras.callbacks.History()
    est = KerasDigitClassifier(**dict(QUICK, max_iter=3), callbacks=[counter, history])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    # Their own state is theirs to keep; the Keras model is not attached.
    assert counter.epochs == 3 and len(history.history["loss"]) == 3
    assert counter.model is None and history.model is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        copied = copy.deepcopy(est)
        cloned = clone(est)
    assert copied.callbacks[0].model is None
    np.testing.assert_array_equal(copied.predict_proba(X), est.predict_proba(X))
    assert cloned.callbacks[0] is not counter


def test_callbacks_hold_no_model_after_a_failed_fit(small_digits):
    X, y = small_digits

    class Boom(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise RuntimeError("boom")

    boom = Boom()
    with pytest.raises(RuntimeError, match="boom"):
        KerasDigitClassifier(**QUICK, callbacks=[boom]).fit(X, y)
    assert boom.model is None


@pytest.mark.parametrize(
    "callback",
    [
        lambda: keras.callbacks.ReduceLROnPlateau(monitor="loss"),
        lambda: keras.callbacks.LearningRateScheduler(lambda epoch, rate: rate),
    ],
    ids=["ReduceLROnPlateau", "LearningRateScheduler"],
)
def test_callbacks_setting_the_learning_rate_are_refused_before_training(
    callback, small_digits
):
    X, y = small_digits
    est = KerasDigitClassifier(**{**QUICK, "max_iter": 2}).fit(X, y)
    before = est.predict_proba(X)
    callback = callback()
    est.set_params(callbacks=[keras.callbacks.History(), callback])
    name = type(callback).__name__
    with pytest.raises(ValueError, match=rf"callbacks holds {name}.*learning_rate="):
        est.fit(X, y)
    assert callback.model is None
    np.testing.assert_array_equal(est.predict_proba(X), before)


@pytest.mark.parametrize("hook", ["on_train_begin", "on_epoch_end", "on_train_end"])
def test_a_callback_reading_the_optimizer_gets_an_explained_error(hook, small_digits):
    X, y = small_digits

    class ReadsOptimizer(keras.callbacks.Callback):
        pass

    def read(self, *args, **kwargs):
        return self.model.optimizer.learning_rate

    setattr(ReadsOptimizer, hook, read)
    callback = ReadsOptimizer()
    est = KerasDigitClassifier(**{**QUICK, "max_iter": 2}, callbacks=[callback])
    with pytest.raises(ValueError, match="reads the Keras model's optimizer"):
        est.fit(X, y)
    assert callback.model is None


def test_an_attribute_error_of_a_callback_is_its_own(small_digits):
    X, y = small_digits

    class Broken(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise AttributeError("no attribute 'colour'")

    with pytest.raises(AttributeError, match="colour"):
        KerasDigitClassifier(**QUICK, callbacks=[Broken()]).fit(X, y)
