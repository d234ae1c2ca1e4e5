"""Stable resources: memory over many fits, fits in threads, and interrupts.

Documented behaviour on KeyboardInterrupt during fit: the estimator is left
unchanged if no epoch completed; otherwise it is fitted up to the last
completed epoch, with the warning "Training interrupted by user.".
"""

import _thread
import gc
import sys
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import keras
import numpy as np
import psutil
import pytest

from sk_keras_digits import KerasDigitClassifier, _training
from tests._helpers import IGNORE_CONVERGENCE, SMALL
from tests._networks import dropout_network

pytestmark = IGNORE_CONVERGENCE
SMALL = dict(SMALL, max_iter=5)


def rss_mb():
    return psutil.Process().memory_info().rss / 2**20


def rss_growth_per_call(call, n_calls, every=10):
    """RSS growth per call of ``call(i)``, in MB: a least-squares slope.

    RSS is read after a full garbage collection, before the first call and
    after every ``every`` calls.
    """
    counts, sizes = [], []
    for i in range(n_calls + 1):
        if i % every == 0:
            gc.collect()
            counts.append(i)
            sizes.append(rss_mb())
        if i < n_calls:
            call(i)
    return np.polyfit(counts, sizes, 1)[0]


def compiled_programs():
    return set(map(id, _training.PROGRAMS.values()))


@pytest.fixture(scope="module")
def data(small_digits):
    X, y = small_digits
    return X[:200], y[:200]


def fitted_state(est):
    return {k: v for k, v in vars(est).items() if k.endswith("_") or k[0] == "_"}


# -- memory ----------------------------------------------------------------------
def varied_settings(i):
    """A cycle of settings: two solvers, two activations, seven widths."""
    return dict(
        SMALL,
        solver=("sgd", "adam")[i % 2],
        activation=("relu", "tanh")[(i // 2) % 2],
        hidden_layer_sizes=(4 + i % 7,),
        random_state=i,
    )


def test_memory_flat_over_hundreds_of_fits(data):
    """300 fits (and predictions) after a warm-up grow RSS by less than 50 MB."""
    X, y = data[0][:100], data[1][:100]
    for i in range(40):
        KerasDigitClassifier(**varied_settings(i)).fit(X, y).predict_proba(X)
    gc.collect()
    before = rss_mb()
    for i in range(300):
        est = KerasDigitClassifier(**varied_settings(i)).fit(X, y)
        assert np.isfinite(est.predict_proba(X)).all()
    gc.collect()
    growth = rss_mb() - before
    assert growth < 50, f"RSS grew by {growth:.1f} MB over 300 fits"
    assert len(_training.PROGRAMS) <= _training.CACHE_SIZE


def test_custom_network_refits_reuse_their_program_and_memory(data):
    """Refitting one custom architecture compiles nothing new, leaks nothing."""
    X, y = data[0][:100], data[1][:100]
    params = dict(SMALL, network=dropout_network)
    for seed in range(3):
        KerasDigitClassifier(**{**params, "random_state": seed}).fit(X, y)
    programs = compiled_programs()
    for seed in range(3, 6):
        KerasDigitClassifier(**{**params, "random_state": seed}).fit(X, y)
    assert compiled_programs() == programs, "each fit compiled a new program"
    gc.collect()
    before = rss_mb()
    for seed in range(40):
        est = KerasDigitClassifier(**{**params, "random_state": seed}).fit(X, y)
        assert np.isfinite(est.predict_proba(X)).all()
    gc.collect()
    growth = rss_mb() - before
    assert growth < 30, f"RSS grew by {growth:.1f} MB over 40 custom fits"


def test_custom_network_memory_is_flat_over_250_fits(data):
    """Fresh custom networks add nothing that outlives their estimator.

    Each fit builds a new Keras model, whose layers Keras names uniquely; the
    memory TensorFlow keeps per distinct variable name used to add about
    0.2 MB per fit.
    """
    X, y = data[0][:100], data[1][:100]

    def fit(i):
        KerasDigitClassifier(network=dropout_network, max_iter=1, random_state=i).fit(
            X, y
        )

    for i in range(20):
        fit(i)
    growth = rss_growth_per_call(fit, 250)
    assert growth <= 0.05, f"RSS grew by {growth:.3f} MB per fit"


# -- threads ---------------------------------------------------------------------
def fit_proba(params, X, y):
    return KerasDigitClassifier(**params).fit(X, y).predict_proba(X)


@pytest.mark.parametrize(
    "settings",
    [
        [dict(SMALL, activation="relu"), dict(SMALL, solver="adam", random_state=1)],
        [dict(SMALL, activation="tanh"), dict(SMALL, activation="tanh")],
        [
            dict(SMALL, network=dropout_network, random_state=1),
            dict(SMALL, network=dropout_network, random_state=2),
        ],
    ],
    ids=["different_settings", "same_setting", "custom_network"],
)
def test_fits_in_two_threads_match_sequential_fits(settings, data):
    X, y = data
    alone = [fit_proba(params, X, y) for params in settings]
    for _ in range(4):
        with ThreadPoolExecutor(max_workers=2) as pool:
            together = list(pool.map(lambda p: fit_proba(p, X, y), settings))
        for a, b in zip(alone, together, strict=True):
            assert np.array_equal(a, b)


def test_predict_and_fit_in_threads(data):
    """Predicting with one estimator while another fits, in two threads."""
    X, y = data
    fitted = KerasDigitClassifier(**SMALL).fit(X, y)
    expected = fitted.predict_proba(X)
    refit_alone = fit_proba(dict(SMALL, random_state=9), X, y)
    barrier = threading.Barrier(2)

    def predict_many():
        barrier.wait()
        return [fitted.predict_proba(X) for _ in range(50)]

    def fit_once():
        barrier.wait()
        return fit_proba(dict(SMALL, random_state=9), X, y)

    with ThreadPoolExecutor(max_workers=2) as pool:
        predictions, refit = pool.submit(predict_many), pool.submit(fit_once)
        assert all(np.array_equal(p, expected) for p in predictions.result())
        assert np.array_equal(refit.result(), refit_alone)


# -- interrupts ------------------------------------------------------------------
def interrupt_at_epoch_end(epoch):
    def on_epoch_end(index, logs):
        if index == epoch:
            raise KeyboardInterrupt

    return keras.callbacks.LambdaCallback(on_epoch_end=on_epoch_end)


def interrupt_at_train_begin():
    def on_train_begin(logs):
        raise KeyboardInterrupt

    return keras.callbacks.LambdaCallback(on_train_begin=on_train_begin)


def assert_consistent(est, n_samples):
    """Every record of training agrees on the number of completed epochs."""
    n = est.n_iter_
    assert len(est.loss_curve_) == len(est.history_["loss"]) == n
    assert len(est.history_["learning_rate"]) == n
    assert est.t_ == n * n_samples
    assert est.loss_ == est.loss_curve_[-1]
    assert np.isfinite(est.predict_proba(np.zeros((1, est.n_features_in_)))).all()


@pytest.mark.parametrize("refit", [False, True], ids=["fresh", "refit"])
def test_interrupt_after_epoch_3_keeps_three_epochs(refit, data):
    X, y = data
    est = KerasDigitClassifier(**dict(SMALL, max_iter=20))
    if refit:
        est.set_params(random_state=4).fit(X, y)
        est.set_params(random_state=0)
    est.set_params(callbacks=[interrupt_at_epoch_end(2)])
    with pytest.warns(UserWarning, match="Training interrupted by user."):
        est.fit(X, y)
    assert est.n_iter_ == 3
    assert_consistent(est, len(y))
    three_epochs = KerasDigitClassifier(**dict(SMALL, max_iter=3)).fit(X, y)
    assert np.array_equal(est.predict_proba(X), three_epochs.predict_proba(X))
    assert est.loss_curve_ == three_epochs.loss_curve_


def test_interrupt_with_early_stopping(data):
    X, y = data
    params = dict(SMALL, max_iter=20, early_stopping=True, n_iter_no_change=50)
    est = KerasDigitClassifier(**params, callbacks=[interrupt_at_epoch_end(2)])
    with pytest.warns(UserWarning, match="Training interrupted by user."):
        est.fit(X, y)
    assert est.n_iter_ == 3 and len(est.validation_scores_) == 3
    three_epochs = KerasDigitClassifier(**{**params, "max_iter": 3}).fit(X, y)
    assert np.array_equal(est.predict_proba(X), three_epochs.predict_proba(X))


def test_interrupt_before_any_epoch_leaves_the_estimator_unchanged(data):
    X, y = data
    fresh = KerasDigitClassifier(**SMALL, callbacks=[interrupt_at_train_begin()])
    with pytest.raises(KeyboardInterrupt):
        fresh.fit(X, y)
    assert not hasattr(fresh, "coefs_")
    fitted = KerasDigitClassifier(**SMALL).fit(X, y)
    state, proba = fitted_state(fitted), fitted.predict_proba(X)
    fitted.set_params(callbacks=[interrupt_at_train_begin()])
    for call in (lambda: fitted.fit(X, y), lambda: fitted.partial_fit(X, y)):
        with pytest.raises(KeyboardInterrupt):
            call()
        assert fitted_state(fitted).keys() == state.keys()
        assert all(fitted_state(fitted)[k] is state[k] for k in state)
        assert np.array_equal(fitted.predict_proba(X), proba)


def test_interrupt_after_a_partial_fit_epoch_keeps_it(data):
    X, y = data
    est = KerasDigitClassifier(**SMALL).partial_fit(X, y, classes=np.arange(10))
    one_more = KerasDigitClassifier(**SMALL).partial_fit(X, y, classes=np.arange(10))
    one_more.partial_fit(X, y)
    est.set_params(callbacks=[interrupt_at_epoch_end(0)])
    with pytest.warns(UserWarning, match="Training interrupted by user."):
        est.partial_fit(X, y)
    assert est.n_iter_ == 1 and len(est.loss_curve_) == 2
    assert np.array_equal(est.predict_proba(X), one_more.predict_proba(X))


def interrupt_at_call(n, where):
    """A trace function raising KeyboardInterrupt at the n-th call ``where`` makes.

    This makes an interrupt arrive at each point of the training loop where
    Python runs (signals are handled between Python calls), one point per fit.
    """
    calls = [0]

    def tracer(frame, event, arg):
        if event == "call" and frame.f_back is not None:
            if frame.f_back.f_code is where:
                calls[0] += 1
                if calls[0] == n:
                    raise KeyboardInterrupt
        return None

    return tracer, calls


def test_interrupt_at_any_point_of_the_loop_is_consistent(data):
    """Unchanged, or fitted exactly up to the last epoch it records."""
    X, y = data
    params = dict(SMALL, max_iter=4, callbacks=[keras.callbacks.History()])
    by_epochs = {
        k: KerasDigitClassifier(**{**params, "max_iter": k}).fit(X, y)
        for k in range(1, 5)
    }
    where = _training.train_stochastic.__code__
    previous = sys.gettrace()
    tracer, calls = interrupt_at_call(0, where)
    sys.settrace(tracer)
    try:
        KerasDigitClassifier(**params).fit(X, y)
    finally:
        sys.settrace(previous)
    total = calls[0]
    assert total >= 8  # the loop makes Python calls in every epoch
    outcomes = []
    for n in range(1, total + 1):
        est = KerasDigitClassifier(**params)
        tracer, calls = interrupt_at_call(n, where)
        sys.settrace(tracer)
        try:
            with warnings.catch_warnings(record=True):
                warnings.simplefilter("always")
                est.fit(X, y)
        except KeyboardInterrupt:
            outcomes.append(0)
            assert not hasattr(est, "coefs_")
            continue
        finally:
            sys.settrace(previous)
        outcomes.append(est.n_iter_)
        assert_consistent(est, len(y))
        reference = by_epochs[est.n_iter_]
        assert np.array_equal(est.predict_proba(X), reference.predict_proba(X)), n
    print("epochs kept per interruption point:", outcomes)
    assert outcomes[0] == 0  # before the first epoch: unchanged
    assert set(outcomes) == {0, 1, 2, 3, 4}


def interrupt_after(seconds, action):
    """Run ``action`` and send a real interrupt (SIGINT) to it after ``seconds``."""
    timer = threading.Timer(seconds, _thread.interrupt_main)
    outcome = "finished"
    try:
        timer.start()
        try:
            action()
        except KeyboardInterrupt:
            outcome = "interrupted"
        finally:
            timer.cancel()
            timer.join()
            time.sleep(0.01)  # a late interrupt lands here, inside the try
    except KeyboardInterrupt:
        pass
    return outcome


@pytest.mark.parametrize("solver", ["sgd", "lbfgs"])
def test_real_interrupt_during_a_long_fit(solver, data):
    X, y = data
    params = dict(
        SMALL,
        solver=solver,
        max_iter=10**6,
        max_fun=10**7,
        tol=0.0,
        n_iter_no_change=np.inf,
        batch_size=200,
    )
    if solver == "lbfgs":
        params["hidden_layer_sizes"] = (100,)
    est = KerasDigitClassifier(**params)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outcome = interrupt_after(0.5, lambda: est.fit(X, y))
    assert outcome != "finished" or hasattr(est, "coefs_")
    if hasattr(est, "coefs_"):
        # The interrupt came after a completed call into the compiled loop.
        assert solver == "sgd"
        assert any("interrupted by user" in str(w.message) for w in caught)
        assert_consistent(est, len(y))
    else:
        assert outcome == "interrupted"
