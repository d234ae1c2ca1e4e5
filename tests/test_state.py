"""The fitted-state records: derived attributes and the bookkeeping of a fit."""

import pickle
import subprocess
import sys

import numpy as np
import pytest

from sk_keras_digits import KerasDigitClassifier
from sk_keras_digits._labels import LabelEncoding
from sk_keras_digits._state import (
    EpochLog,
    FittedState,
    History,
    Progress,
    SGDState,
    TrainingState,
    Weights,
)
from tests._helpers import IGNORE_CONVERGENCE

pytestmark = IGNORE_CONVERGENCE


def weights(dtype=np.float64):
    rng = np.random.RandomState(0)
    shapes = [(4, 3), (3,), (3, 2), (2,)]
    return Weights(tuple(rng.normal(size=s).astype(dtype) for s in shapes), ())


def labels(kind="multiclass"):
    if kind == "binary":
        return LabelEncoding(np.array(["no", "yes"]), "binary")
    if kind == "multilabel-indicator":
        return LabelEncoding(np.arange(3), kind)
    return LabelEncoding(np.array([3, 5, 7]), kind)


def test_weights_views():
    w = weights()
    assert [c.shape for c in w.coefs] == [(4, 3), (3, 2)]
    assert [i.shape for i in w.intercepts] == [(3,), (2,)]
    assert w.size == 12 + 3 + 6 + 2
    assert w.all_finite()
    broken = w._replace(params=(*w.params[:-1], np.array([np.nan, 0.0])))
    assert not broken.all_finite()


def test_initial_state_and_derived_views():
    stopping = FittedState.initial(labels(), weights(), 0.1, early_stopping=True)
    assert stopping.training.progress == Progress(0.1, np.inf, -np.inf, 0, 0.0)
    assert stopping.training.solver is None
    assert stopping.early_stopping
    assert stopping.best_loss is None
    assert stopping.best_validation_score == -np.inf
    assert stopping.validation_scores == []
    assert stopping.keras_history == {
        "loss": [],
        "learning_rate": [],
        "val_accuracy": [],
    }
    plain = FittedState.initial(labels(), weights(), 0.1, early_stopping=False)
    assert not plain.early_stopping
    assert plain.best_loss == np.inf
    assert plain.best_validation_score is None and plain.validation_scores is None
    assert plain.keras_history == {"loss": [], "learning_rate": []}


def test_after_epochs_extends_the_history_and_keeps_one_copy_of_everything():
    state = FittedState.initial(labels(), weights(), 0.1, early_stopping=True)
    log = EpochLog().extended([0.9, 0.5], [0.6, 0.8], [0.1, 0.1], [False, False], 0)
    training = TrainingState(
        weights(),
        SGDState(np.zeros(23)),
        Progress(0.1, np.inf, 0.8, 0, 200.0),
    )
    after = state.after_epochs(training, log)
    more = after.after_epochs(training, log.extended([0.4], [0.7], [0.1], [True], 1))
    assert more.history == History(
        losses=(0.9, 0.5, 0.9, 0.5, 0.4),
        scores=(0.6, 0.8, 0.6, 0.8, 0.7),
        learning_rates=(0.1,) * 5,
        n_iter=3,
        loss=0.4,
    )
    assert more.best_validation_score == 0.8
    assert more.training is training
    # The record holds no field twice: every field is a distinct concept.
    assert len(set(FittedState._fields)) == len(FittedState._fields)


def test_after_lbfgs_records_best_loss_and_no_learning_rates():
    state = FittedState.initial(labels(), weights(), 0.1, early_stopping=False)
    after = state.after_lbfgs(weights(), [0.8, 0.3, 0.35], 0.35, 3)
    assert after.best_loss == 0.3
    assert after.history.learning_rates is None
    assert after.keras_history == {"loss": [0.8, 0.3, 0.35]}
    assert after.history.n_iter == 3 and after.history.loss == 0.35


def test_estimator_attributes_are_views_of_its_one_state(small_digits):
    X, y = small_digits
    est = KerasDigitClassifier(
        hidden_layer_sizes=(6,), solver="sgd", max_iter=3, random_state=0
    ).fit(X, y)
    state = est._state
    fitted = {k for k in vars(est) if k.endswith("_") and not k.startswith("__")}
    # Only scikit-learn's input validation stores attributes of its own.
    assert fitted == {"n_features_in_"}
    assert est.coefs_[0] is state.weights.params[0]
    assert est.intercepts_[1] is state.weights.params[3]
    assert est.classes_ is state.labels.classes
    assert est.t_ == int(state.training.progress.samples_seen) == 3 * len(X)
    assert est.loss_curve_ == list(state.history.losses)
    assert est.n_iter_ == 3 and est.n_layers_ == 3 and est.n_outputs_ == 10
    assert est.out_activation_ == "softmax"
    assert state.training.progress.best_weights is None
    with pytest.raises(AttributeError):
        est.coefs_ = []
    unfitted = KerasDigitClassifier()
    assert not hasattr(unfitted, "coefs_") and not hasattr(unfitted, "classes_")
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.predict_proba(X), est.predict_proba(X))


def test_unpickling_a_default_network_estimator_does_not_import_tensorflow(
    small_digits,
):
    X, y = small_digits
    est = KerasDigitClassifier(hidden_layer_sizes=(4,), max_iter=2).fit(X, y)
    script = (
        "import pickle, sys; est = pickle.loads(sys.stdin.buffer.read()); "
        "est.predict(est.coefs_[0].T[:1]); "
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        input=pickle.dumps(est),
        capture_output=True,
        check=True,
    )
    assert out.stdout.decode().split() == ["False", "False"]
