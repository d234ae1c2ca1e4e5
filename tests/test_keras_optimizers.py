"""A ``keras.optimizers.Optimizer`` as the estimator's solver."""

import copy
import pickle
import warnings

import keras
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.utils._param_validation import InvalidParameterError

from sk_keras_digits import KerasDigitClassifier, _training
from sk_keras_digits._keras_optimizer import (
    KerasOptimizer,
    SlotLayout,
    build_optimizer,
)
from sk_keras_digits._state import OptimizerState
from tests._helpers import TENSORFLOW_SESSION, run_in_threads


def estimator(solver, **params):
    return KerasDigitClassifier(
        **{"hidden_layer_sizes": (12,), "max_iter": 5, "random_state": 0, **params},
        solver=solver,
    )


def fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


def weights(est):
    return est.coefs_ + est.intercepts_


def assert_same_weights(a, b):
    for p, q in zip(weights(a), weights(b), strict=True):
        np.testing.assert_array_equal(p, q)


def assert_untouched(optimizer, config):
    """The user's optimizer was only read: unbuilt, unstepped, same config."""
    assert not optimizer.built
    assert int(optimizer.iterations) == 0
    assert len(optimizer.variables) <= 2  # iterations (and learning rate) only
    assert optimizer.get_config() == config


def test_fits_start_from_a_fresh_copy_and_leave_the_users_optimizer_alone(
    small_digits,
):
    X, y = small_digits
    optimizer = keras.optimizers.AdamW(learning_rate=1e-2, weight_decay=1e-4)
    config = optimizer.get_config()
    first = fit(estimator(optimizer, max_iter=30), X, y)
    second = fit(estimator(optimizer, max_iter=30), X, y)
    again = fit(first, X, y)  # a refit starts afresh too
    assert_untouched(optimizer, config)
    assert first.get_params()["solver"] is optimizer
    assert_same_weights(first, second)
    assert_same_weights(again, second)
    state = first._state.training.solver
    assert isinstance(state, OptimizerState)
    n_batches = int(np.ceil(len(X) / 200))
    assert int(state.variables[0]) == 30 * n_batches  # the optimizer's iterations
    assert first.score(X, y) > 0.8
    assert "AdamW" in repr(first)


def test_a_fit_leaves_the_users_automatic_names_alone(small_digits):
    """Reading an optimizer class's defaults builds one, unnamed: the user's
    next optimizer of that class is named as if nothing had been built."""
    X, y = small_digits
    optimizer_class = type("FreshRMSprop", (keras.optimizers.RMSprop,), {})
    assert optimizer_class().name == "fresh_rm_sprop"
    fit(estimator(optimizer_class(learning_rate=0.01), max_iter=2), X, y)
    assert optimizer_class().name == "fresh_rm_sprop_2"


def test_the_n_iter_no_change_rule_stops_as_with_adam(small_digits):
    X, y = small_digits
    rule = dict(max_iter=50, tol=10.0, n_iter_no_change=2)
    ours = fit(estimator(keras.optimizers.RMSprop(1e-3), **rule), X, y)
    adam = fit(estimator("adam", **rule), X, y)
    assert ours.n_iter_ == adam.n_iter_ == len(ours.loss_curve_) < 50


def test_early_stopping_keeps_the_best_weights(small_digits):
    X, y = small_digits
    est = fit(
        estimator(keras.optimizers.Nadam(1e-2), early_stopping=True, max_iter=8),
        X,
        y,
    )
    assert len(est.validation_scores_) == est.n_iter_
    assert est.best_validation_score_ == max(est.validation_scores_)


def test_a_learning_rate_schedule_is_recorded_per_epoch(small_digits):
    X, y = small_digits
    # 300 samples in batches of 100: 3 optimizer steps per epoch.
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 3, 0.5)
    est = fit(
        estimator(keras.optimizers.SGD(schedule), batch_size=100, max_iter=4), X, y
    )
    np.testing.assert_allclose(
        est.history_["learning_rate"], [0.05, 0.025, 0.0125, 0.00625], rtol=1e-6
    )
    constant = fit(estimator(keras.optimizers.Adam(0.003), max_iter=2), X, y)
    np.testing.assert_allclose(constant.history_["learning_rate"], [0.003] * 2)


def test_partial_fit_carries_the_optimizer_state(small_digits):
    X, y = small_digits
    optimizer = keras.optimizers.RMSprop(1e-2, momentum=0.5)
    config = optimizer.get_config()
    incremental = estimator(optimizer, shuffle=False, batch_size=100)
    for _ in range(3):
        incremental.partial_fit(X, y, classes=np.unique(y))
    at_once = fit(estimator(optimizer, shuffle=False, batch_size=100, max_iter=3), X, y)
    assert_same_weights(incremental, at_once)
    assert int(incremental._state.training.solver.variables[0]) == 9
    assert incremental.t_ == 3 * len(X)
    assert_untouched(optimizer, config)


def test_partial_fit_refuses_a_solver_changed_between_calls(small_digits):
    X, y = small_digits
    est = estimator(keras.optimizers.Adam(1e-2))
    est.partial_fit(X, y, classes=np.unique(y))
    before = weights(est)
    for other in (keras.optimizers.Nadam(1e-2), "sgd"):
        est.set_params(solver=other)
        with pytest.raises(ValueError, match="partial_fit cannot change the solver"):
            est.partial_fit(X, y)
        for p, q in zip(weights(est), before, strict=True):
            np.testing.assert_array_equal(p, q)


def test_clone_deepcopy_and_pickle(small_digits):
    X, y = small_digits
    optimizer = keras.optimizers.Lion(learning_rate=1e-3)
    config = optimizer.get_config()
    est = estimator(optimizer)
    cloned = clone(est)
    assert cloned.solver is not optimizer
    assert cloned.solver.get_config() == config
    copied = copy.deepcopy(est)
    pickled = pickle.loads(pickle.dumps(est))
    assert type(pickled.solver) is keras.optimizers.Lion
    fits = [fit(e, X, y) for e in (est, cloned, copied, pickled)]
    for other in fits[1:]:
        assert_same_weights(fits[0], other)
    fitted = pickle.loads(pickle.dumps(fits[0]))
    np.testing.assert_array_equal(fitted.predict_proba(X), fits[0].predict_proba(X))
    assert_same_weights(fit(fitted, X, y), fits[0])
    assert_untouched(optimizer, config)


def keras_programs():
    return {
        id(program): (key, program)
        for key, program in _training.PROGRAMS.items()
        if len(key) > 2 and key[2][0] == "keras"  # (backend, network, solver, ...)
    }


def test_a_grid_over_three_optimizers_traces_three_programs(small_digits):
    X, y = small_digits
    # Learning rates used nowhere else, so the programs are this test's own.
    solvers = [
        keras.optimizers.RMSprop(0.00123),
        keras.optimizers.Adam(0.00123),
        keras.optimizers.Nadam(0.00123),
    ]
    before = keras_programs()
    search = GridSearchCV(
        estimator(None, max_iter=2), {"solver": solvers}, cv=5, error_score="raise"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X, y)
    new = {k: v for k, v in keras_programs().items() if k not in before}
    assert len(new) == 3
    assert {key[2][1].rsplit(".", 1)[1] for key, _ in new.values()} == {
        "RMSprop",
        "Adam",
        "Nadam",
    }
    for _, program in new.values():
        # XLA compiles once per bucket of rows: the folds' 240 rows (256),
        # and the best one's refit on 300 (320).
        assert program.compilations() in (1, 2)
    for optimizer in solvers:
        assert not optimizer.built and int(optimizer.iterations) == 0


# Processes give the same fits on JAX too: the classifier's two-process test
# runs in both sessions.
@TENSORFLOW_SESSION
def test_grid_search_in_two_processes_gives_what_one_gives(small_digits):
    X, y = small_digits
    grid = {
        "solver": [keras.optimizers.Adam(1e-2), keras.optimizers.RMSprop(1e-2)],
    }
    results = []
    for n_jobs in (1, 2):
        search = GridSearchCV(
            estimator(None, max_iter=3), grid, cv=2, n_jobs=n_jobs, error_score="raise"
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            search.fit(X, y)
        results.append(search.cv_results_)
    np.testing.assert_array_equal(
        results[0]["mean_test_score"], results[1]["mean_test_score"]
    )
    for optimizer in grid["solver"]:
        assert not optimizer.built


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_threads_give_what_sequential_fits_give(small_digits):
    X, y = small_digits
    optimizer = keras.optimizers.Adam(1e-2)
    # Three estimators share one program (same optimizer config and shapes).
    settings = [
        dict(random_state=0),
        dict(random_state=1),
        dict(random_state=2, batch_size=50),
        dict(random_state=3, hidden_layer_sizes=(7,)),
    ]
    alone = [fit(estimator(optimizer, **s), X, y) for s in settings]
    results = run_in_threads(lambda s: fit(estimator(optimizer, **s), X, y), settings)
    for solo, threaded in zip(alone, results, strict=True):
        assert_same_weights(solo, threaded)
    assert not optimizer.built


@pytest.mark.parametrize("schedule", ["invscaling", "adaptive"])
def test_a_builtin_schedule_with_an_optimizer_object_is_refused(small_digits, schedule):
    X, y = small_digits
    est = estimator(keras.optimizers.AdamW(), learning_rate=schedule)
    with pytest.raises(
        ValueError, match=rf"learning_rate='{schedule}' is a schedule of the built-in"
    ):
        est.fit(X, y)
    assert not hasattr(est, "_state")


def test_the_builtin_solvers_settings_are_unused_with_an_optimizer_object(
    small_digits,
):
    """As MLPClassifier leaves momentum unused with 'adam': one grid can search
    string solvers (with their settings) and optimizer objects."""
    X, y = small_digits
    optimizer = keras.optimizers.RMSprop(learning_rate=3e-3)
    plain = estimator(optimizer).fit(X, y)
    other = dict(
        learning_rate_init=0.05,
        power_t=0.25,
        momentum=0.5,
        nesterovs_momentum=False,
        beta_1=0.8,
        beta_2=0.99,
        epsilon=1e-7,
    )
    tuned = estimator(optimizer, **other).fit(X, y)
    for a, b in zip(plain.coefs_, tuned.coefs_, strict=True):
        np.testing.assert_array_equal(a, b)


def test_invalid_solvers_are_rejected(small_digits):
    X, y = small_digits
    with pytest.raises(InvalidParameterError, match="'solver' parameter"):
        estimator("rmsprop").fit(X, y)

    class NotKeras:
        def apply(self, grads, variables):
            pass

        def get_config(self):
            return {}

    with pytest.raises(TypeError, match="keras.optimizers.Optimizer instance"):
        estimator(NotKeras()).fit(X, y)
    with pytest.raises(ValueError, match="use_ema=True"):
        estimator(keras.optimizers.Adam(use_ema=True)).fit(X, y)


@pytest.mark.parametrize(
    "solver, match",
    [
        (
            lambda: keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam(0.01)),
            r"solver=<LossScaleOptimizer> cannot (be rebuilt|train float64)",
        ),
        (
            lambda: keras.optimizers.Adam(lambda: 0.01),
            r"solver=<Adam> cannot be rebuilt from its get_config\(\)",
        ),
    ],
    ids=["wrapper", "function_rate"],
)
def test_optimizers_a_fit_cannot_rebuild_are_refused_naming_the_solver(
    solver, match, small_digits
):
    X, y = small_digits
    est = fit(estimator("adam"), X, y)
    before = est.predict_proba(X)
    with pytest.raises(ValueError, match=match):
        est.set_params(solver=solver()).fit(X, y)
    np.testing.assert_array_equal(est.predict_proba(X), before)


def test_an_optimizer_that_cannot_update_this_dtype_is_refused_first(small_digits):
    """Keras' Muon cannot update float64 variables on TensorFlow: refused
    before training, naming the solver, the dtype and the backend."""
    X, y = small_digits
    muon = estimator(keras.optimizers.Muon(0.01))
    if keras.backend.backend() == "tensorflow":
        with pytest.raises(ValueError, match="<Muon> cannot train float64 weights"):
            muon.fit(X, y)
    fit(muon, X.astype(np.float32), y)  # float32 trains on every backend


def test_partial_fit_is_available_and_float32_data_train(small_digits):
    X, y = small_digits
    est = estimator(keras.optimizers.Adam(1e-2))
    assert hasattr(est, "partial_fit")
    fit(est, X.astype(np.float32), y)
    assert est.coefs_[0].dtype == np.float32
    assert est._state.training.solver.variables[2].dtype == np.float32


def test_verbose_and_callbacks_report_the_optimizers_learning_rate(
    small_digits, capsys
):
    X, y = small_digits
    seen = []

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(dict(logs))

    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 3, 0.5)
    est = estimator(
        keras.optimizers.SGD(schedule),
        batch_size=100,
        max_iter=2,
        verbose=True,
        callbacks=[Record()],
    )
    fit(est, X, y)
    assert "Iteration 2, loss = " in capsys.readouterr().out
    np.testing.assert_allclose([log["learning_rate"] for log in seen], [0.05, 0.025])
    np.testing.assert_allclose([log["loss"] for log in seen], est.loss_curve_)


# ------------------------------------------------------------ slot layout
SHAPES = ((5, 3), (3,), (3, 2), (2,))


def _pack(parts):
    return np.concatenate([np.ravel(p) for p in parts])


def _unpack(flat):
    sizes = [int(np.prod(s)) for s in SHAPES]
    parts = np.split(np.asarray(flat), np.cumsum(sizes)[:-1])
    return [p.reshape(s) for p, s in zip(parts, SHAPES, strict=True)]


def _values(optimizer):
    return [keras.ops.convert_to_numpy(v.value) for v in optimizer.variables]


#: Settings that give each rule all of its slots.
_SLOT_SETTINGS = {"SGD": {"momentum": 0.9}, "RMSprop": {"momentum": 0.5}}


@pytest.mark.parametrize("name", KerasOptimizer.ELEMENTWISE)
def test_an_elementwise_optimizer_steps_each_parameter_as_its_flat_record(name):
    """Built on each parameter (the program's layout), an element-wise optimizer
    steps as when built on the flat vector (its record's layout), and
    SlotLayout carries its variables between the two, both ways."""
    settings = _SLOT_SETTINGS.get(name, {})
    solver = KerasOptimizer(getattr(keras.optimizers, name)(**settings))
    assert solver.elementwise
    program, parameters = build_optimizer(solver, SHAPES, "float32")
    recorded, (flat,) = build_optimizer(solver, solver.layout(SHAPES), "float32")
    slots = SlotLayout.derive(recorded.variables, program.variables, SHAPES)
    assert slots is not None
    assert slots.size == len(program.variables) > len(recorded.variables)
    rng = np.random.default_rng(0)
    start = [rng.normal(size=s).astype("float32") for s in SHAPES]
    for variable, value in zip(parameters, start, strict=True):
        variable.assign(value)
    flat.assign(_pack(start))
    for _ in range(3):
        grads = [rng.normal(size=s).astype("float32") for s in SHAPES]
        program.apply(grads, parameters)
        recorded.apply([_pack(grads)], [flat])
    np.testing.assert_allclose(
        _pack([keras.ops.convert_to_numpy(p) for p in parameters]),
        keras.ops.convert_to_numpy(flat),
        rtol=1e-6,
        atol=1e-7,
    )
    mine, theirs = _values(program), _values(recorded)
    for a, b in zip(slots.to_record(mine, _pack), theirs, strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    for a, b in zip(slots.to_program(theirs, _unpack), mine, strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_slots_that_do_not_line_up_give_no_layout():
    solver = KerasOptimizer(keras.optimizers.Adam())
    program, _ = build_optimizer(solver, SHAPES, "float32")
    recorded, _ = build_optimizer(solver, solver.layout(SHAPES), "float32")
    assert SlotLayout.derive(recorded.variables, program.variables, SHAPES)
    # Other parameters (names or shapes) than the program was built on.
    assert SlotLayout.derive(recorded.variables, program.variables, SHAPES[:2]) is None
    other = ((5, 4), (4,), (4, 2), (2,))
    assert SlotLayout.derive(recorded.variables, program.variables, other) is None
    # A program missing a variable of the record.
    assert SlotLayout.derive(recorded.variables, program.variables[:-1], SHAPES) is None
    # A program with a variable the record does not hold.
    assert SlotLayout.derive(recorded.variables[:-1], program.variables, SHAPES) is None
