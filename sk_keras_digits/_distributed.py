"""Grid searches on a Dask cluster that survive a lost worker: :func:`dask_backend`.

joblib's own ``"dask"`` backend scatters every large argument of a search (the
training data, each split's indices) to one worker. Dask cannot recompute
scattered data, so when that worker dies, every fit that needs the data is
cancelled and the search fails. The backend here sends each call, its data
included, as one ordinary Dask task instead: the scheduler keeps a task's
inputs until it is done, so a fit lost with its worker, or a result lost
before it was collected, is simply computed again on another worker.

Dask is imported only when :func:`dask_backend` is called.
"""

import uuid

import joblib
from joblib.parallel import ParallelBackendBase


def dask_backend(client=None):
    """Run scikit-learn's joblib-parallel work as Dask tasks that survive lost workers.

    Inside ``with dask_backend(client):``,
    :class:`~sklearn.model_selection.GridSearchCV`,
    :func:`~sklearn.model_selection.cross_validate` and every other scikit-learn
    tool that runs through joblib send their fits to the Dask cluster, one fit
    per task. Each task carries its inputs (the estimator, ``X``, ``y`` and the
    split's indices), and the scheduler keeps them until the task is done. If a
    worker dies, Dask runs its unfinished fits again on the other workers (and
    recomputes any result that had not been collected yet), so the search
    finishes with the results it would have had without the loss.

    Parameters
    ----------
    client : distributed.Client, default=None
        The client of the cluster that runs the fits. ``None`` uses the current
        default client (:func:`distributed.get_client`).

    Returns
    -------
    config : joblib.parallel_config
        A context manager that makes the backend joblib's default inside its
        ``with`` block. The search uses all the cluster's worker threads,
        whatever its ``n_jobs``.

    See Also
    --------
    joblib.parallel_config : Selects joblib's backend; ``backend="dask"`` is
        joblib's own Dask backend, which does not survive a lost worker.

    Notes
    -----
    The data travel with every fit, so a search sends ``X`` and ``y`` to the
    cluster once per fit (``n_candidates * n_splits`` times) rather than once
    per worker, and the scheduler holds the inputs of every fit that is
    queued, running or not yet collected. For data of a few megabytes, such as
    the digits, this costs far less than a fit.

    A fit is run again at most ``distributed.scheduler.allowed-failures``
    times (Dask's setting, 3 by default) when its workers die; beyond that the
    search raises :class:`distributed.KilledWorker`. A lost worker is the only
    loss a search survives: if the scheduler dies, the search raises
    :class:`distributed.client.FutureCancelledError`, and nothing survives the
    death of the process that runs the search.

    Examples
    --------
    >>> from dask.distributed import Client, LocalCluster
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.model_selection import GridSearchCV
    >>> from sk_keras_digits import KerasDigitClassifier, dask_backend
    >>> X, y = load_digits(return_X_y=True)
    >>> search = GridSearchCV(
    ...     KerasDigitClassifier(max_iter=5, random_state=0),
    ...     {"hidden_layer_sizes": [(8,), (16,)]},
    ...     cv=2,
    ... )
    >>> cluster = LocalCluster(n_workers=1, processes=False, dashboard_address=None)
    >>> with cluster, Client(cluster) as client, dask_backend(client):
    ...     search = search.fit(X[:200] / 16, y[:200])
    >>> search.best_params_
    {'hidden_layer_sizes': (16,)}
    """
    from distributed import Client, get_client

    if client is None:
        client = get_client()
    elif not isinstance(client, Client):
        raise TypeError(
            "dask_backend expects client=None (the default client) or a "
            f"distributed.Client, got {client!r}."
        )
    _check_open(client)
    return joblib.parallel_config(backend=_DaskTaskBackend(client))


def _check_open(client):
    """Refuse a client that was closed (its cluster may still run)."""
    if client.status in ("closing", "closed"):
        raise ValueError(
            f"The Dask client {client!r} is {client.status}; dask_backend needs an "
            "open client: create a new distributed.Client for the cluster."
        )


class _DaskTaskBackend(ParallelBackendBase):
    """A joblib backend that runs each batch of calls as one recomputable Dask task.

    Parameters
    ----------
    client : distributed.Client
        The client of the cluster that runs the tasks.
    """

    default_n_jobs = -1
    supports_retrieve_callback = True

    def __init__(self, client, **backend_kwargs):
        super().__init__(**backend_kwargs)
        self.client = client
        self._futures = set()

    def effective_n_jobs(self, n_jobs):
        _check_open(self.client)
        n_threads = sum(self.client.nthreads().values())
        if n_threads == 0:
            raise ValueError(
                f"The Dask client {self.client!r} has no workers; dask_backend "
                "expects a cluster with at least one worker. Start workers or "
                "wait for them with client.wait_for_workers(1)."
            )
        # joblib runs an ``n_jobs`` of 1 in the calling process: with a single
        # worker thread, claim two, so that the fits still go to the cluster.
        return max(n_threads, 2)

    def submit(self, func, callback=None):
        # ``func`` is a batch of calls holding all its arguments: submitted as
        # the task itself, it stays on the scheduler until the task is done,
        # so Dask can run the task again anywhere. Nothing is scattered.
        future = self.client.submit(
            func, key=f"sk_keras_digits-batch-{uuid.uuid4().hex}", pure=False
        )
        self._futures.add(future)
        if callback is not None:
            future.add_done_callback(callback)
        return future

    def retrieve_result_callback(self, out):
        try:
            return out.result()
        finally:
            # Let the cluster release the result once it is here.
            self._futures.discard(out)

    def abort_everything(self, ensure_ready=True):
        futures, self._futures = list(self._futures), set()
        if futures:
            self.client.cancel(futures)

    def stop_call(self):
        self._futures = set()
