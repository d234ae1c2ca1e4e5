"""Grid search over KerasDigitClassifier on a real Dask cluster, and with n_jobs.

The same search runs in this process, on a ``dask.distributed.LocalCluster``
with two worker processes (through joblib's ``"dask"`` backend), and with
``n_jobs=2`` on joblib's default backend: the best parameters and every score
must be identical.
"""

import logging
import os
import sys

import joblib
import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV

from sk_keras_digits import KerasDigitClassifier

distributed = pytest.importorskip("dask.distributed")

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

GRID = {"hidden_layer_sizes": [(8,), (16,)]}


def make_search(**kwargs):
    estimator = KerasDigitClassifier(
        solver="sgd",
        learning_rate_init=0.2,
        batch_size=50,
        max_iter=10,
        random_state=0,
    )
    return GridSearchCV(estimator, GRID, cv=3, **kwargs)


@pytest.fixture(scope="module")
def data(digits):
    X, y = digits
    return X[:300] / 16.0, y[:300]


@pytest.fixture(scope="module")
def sequential(data):
    return make_search().fit(*data)


def assert_same_search(a, b):
    assert a.best_params_ == b.best_params_
    assert a.best_index_ == b.best_index_
    for key in ["mean_test_score", *(f"split{i}_test_score" for i in range(3))]:
        assert np.array_equal(a.cv_results_[key], b.cv_results_[key]), key
    X = np.eye(64)
    assert np.array_equal(
        a.best_estimator_.predict_proba(X), b.best_estimator_.predict_proba(X)
    )


def worker_state():
    """Run on each Dask worker: its process id and whether it ran Keras."""
    return os.getpid(), "tensorflow" in sys.modules


def test_grid_search_on_a_dask_cluster(sequential, data):
    with (
        distributed.LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            dashboard_address=":0",
            silence_logs=logging.ERROR,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        with (
            distributed.get_task_stream(client) as tasks,
            joblib.parallel_backend("dask"),
        ):
            search = make_search(n_jobs=-1).fit(*data)
        workers = client.run(worker_state)
    assert_same_search(sequential, search)
    # The fits ran in the two worker processes, not here.
    assert len(workers) == 2
    assert all(pid != os.getpid() for pid, _ in workers.values())
    ran = {task["worker"] for task in tasks.data}
    assert ran and ran <= set(workers)
    assert all(workers[address][1] for address in ran)


def test_grid_search_with_n_jobs(sequential, data):
    search = make_search(n_jobs=2).fit(*data)
    assert_same_search(sequential, search)
