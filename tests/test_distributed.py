"""Grid search over KerasDigitClassifier on a real Dask cluster, and with n_jobs.

The same search runs in this process, on a ``dask.distributed.LocalCluster``
with two worker processes (through joblib's ``"dask"`` backend, and through
:func:`dask_backend` while one worker process is killed in the middle of the
search), and with ``n_jobs=2`` on joblib's default backend: the best parameters
and every score must be identical. A regressor cross-validates on the
cluster as in this process.
"""

import logging
import os
import signal
import sys
import time

import joblib
import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, cross_val_score

from sk_keras_digits import KerasDigitClassifier, KerasDigitRegressor, dask_backend
from tests._helpers import IGNORE_CONVERGENCE

distributed = pytest.importorskip("dask.distributed")

pytestmark = IGNORE_CONVERGENCE

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
    """Run on each Dask worker: its process id and the backend its fits ran on,
    as the backend module the package loaded (a fit whose program JAX's
    persistent compilation cache held imports no Keras)."""
    loaded = [
        name
        for name in ("tensorflow", "jax")
        if f"sk_keras_digits._backends.{name}" in sys.modules
    ]
    return os.getpid(), loaded[0] if len(loaded) == 1 else loaded or None


def local_cluster(n_workers):
    return distributed.LocalCluster(
        n_workers=n_workers,
        processes=True,
        threads_per_worker=1,
        dashboard_address=":0",
        silence_logs=logging.CRITICAL,
    )


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes of one thread each, shared by this module's tests."""
    with local_cluster(n_workers=2) as cluster:
        yield cluster


@pytest.fixture
def client(cluster):
    with distributed.Client(cluster) as client:
        # Both workers are up (the nanny restarts a killed one).
        client.wait_for_workers(2, timeout=60)
        yield client


def test_grid_search_on_a_dask_cluster(sequential, data, client, backend):
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
    # ... on this session's backend (workers inherit KERAS_BACKEND).
    assert all(workers[address][1] == backend for address in ran)


class KillOneWorker(distributed.SchedulerPlugin):
    """SIGKILL one worker process in the middle of a fit, once a fit has finished.

    Runs in the scheduler. On the first task to finish, it kills a worker that
    is running a task at that moment (the process, not its nanny, which starts
    a new one), and records which tasks finished before and after the kill,
    and in which worker process.
    """

    name = "kill-one-worker"

    def __init__(self):
        self.victim = None  # (pid, keys it was running)
        self.finished_before = []  # (key, pid of the worker)
        self.finished_after = []

    async def start(self, scheduler):
        self.scheduler = scheduler

    def transition(self, key, start, finish, *args, **kwargs):
        if (start, finish) != ("processing", "memory"):
            return
        worker = self.scheduler.workers.get(kwargs.get("worker"))
        finished = (key, worker.pid if worker is not None else None)
        if self.victim is not None:
            self.finished_after.append(finished)
            return
        self.finished_before.append(finished)
        busy = [ws for _, ws in sorted(self.scheduler.workers.items()) if ws.processing]
        if busy:
            ws = busy[0]
            self.victim = (ws.pid, {ts.key for ts in ws.processing})
            os.kill(ws.pid, signal.SIGKILL)


def wait_until_gone(pid, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_grid_search_survives_a_killed_worker(sequential, data, cluster, client):
    client.register_plugin(KillOneWorker())
    try:
        with dask_backend(client):
            search = make_search().fit(*data)
    finally:
        killer = cluster.scheduler.plugins[KillOneWorker.name]
        client.unregister_scheduler_plugin(KillOneWorker.name)
    live_pids = set(client.run(os.getpid).values())
    # The results are those of the search in this process, as if nothing died.
    assert_same_search(sequential, search)
    # A worker process was killed in the middle of the search: some fits had
    # finished, it was running others, and fits finished after its death ...
    assert killer.victim is not None
    pid, running = killer.victim
    assert killer.finished_before and running and killer.finished_after
    assert wait_until_gone(pid) and pid not in live_pids
    # ... among them the fits it was running, done again by another worker.
    finished_after = dict(killer.finished_after)
    assert running <= set(finished_after)
    assert all(p is not None and p != pid for p in finished_after.values())
    # Every fit (2 candidates x 3 splits, one fit per task) ran on the cluster.
    finished = dict(killer.finished_before + killer.finished_after)
    assert len(finished) == 6
    assert all(key.startswith("sk_keras_digits-batch-") for key in finished)


def test_regressor_cross_validates_on_the_cluster(digit_targets, client):
    X, y, _ = digit_targets
    regressor = KerasDigitRegressor(
        hidden_layer_sizes=(8,), solver="lbfgs", max_iter=20, random_state=0
    )
    here = cross_val_score(regressor, X, y, cv=3)
    with distributed.get_task_stream(client) as tasks, dask_backend(client):
        there = cross_val_score(regressor, X, y, cv=3, n_jobs=-1)
    assert np.array_equal(here, there)
    assert len({task["worker"] for task in tasks.data}) >= 1


def test_dask_backend_needs_a_worker(data):
    with (
        local_cluster(n_workers=0) as cluster,
        distributed.Client(cluster),
        dask_backend(),  # the default client: the one just opened
        pytest.raises(ValueError, match="has no workers; dask_backend expects"),
    ):
        make_search().fit(*data)


def test_grid_search_with_n_jobs(sequential, data):
    search = make_search(n_jobs=2).fit(*data)
    assert_same_search(sequential, search)


@pytest.mark.parametrize("client", ["tcp://scheduler:8786", 3])
def test_dask_backend_refuses_what_is_not_a_client(client):
    with pytest.raises(TypeError, match="dask_backend expects client=None"):
        dask_backend(client)


def test_dask_backend_refuses_a_closed_client(cluster, data):
    """Closed before the block, or inside it before the search: said so."""
    closed = distributed.Client(cluster)
    closed.close()
    with pytest.raises(ValueError, match="is closed; dask_backend needs an open"):
        dask_backend(closed)
    with distributed.Client(cluster) as client:
        with dask_backend(client):
            client.close()
            with pytest.raises(ValueError, match="is closed; dask_backend needs"):
                make_search().fit(*data)
