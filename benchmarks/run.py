"""Benchmark sk_keras_digits against MLPClassifier, plain Keras and the wrappers.

One command measures, in one process and on the same data (scikit-learn's 8x8
digits, the tutorial's split: the first 1000 digits train, the other 797
test), ``KerasDigitClassifier`` against ``MLPClassifier`` with the same
settings (and ``KerasDigitRegressor`` against ``MLPRegressor``, on the
diabetes data), and (unless ``--skip-peers``) the tutorial's plain Keras code,
``keras.wrappers.SKLearnClassifier`` and scikeras' ``KerasClassifier`` on the
same network, on one Keras backend (``--backend``; scikeras needs TensorFlow
and is left out on JAX). It prints a table of the figures with their targets,
a table of absolute times, and writes every number to a JSON file of its
backend; the docs' ``docs/benchmark_table.rst`` is rendered from the latest
JSON of each backend, one column per backend::

    python benchmarks/run.py                        # TensorFlow, full run
    python benchmarks/run.py --backend jax          # JAX, full run
    python benchmarks/run.py --quick --skip-peers   # smoke run, ~2 min

See ``benchmarks/README.md`` for what each figure means.

The modules beside this entry point: ``settings`` (backends, repeats,
targets, paths), ``peers`` (the estimators measured), ``measurements`` (the
``bench_*`` functions) and ``summary`` (tables, JSON, RST). The tutorial's
data, models, grid search and text table come from
:mod:`sk_keras_digits.tutorial`, the ``sk-keras-digits`` command's own.
None of them imports Keras: :func:`main` sets ``KERAS_BACKEND`` from
``--backend`` before anything does, and the fresh processes the benchmark
starts inherit it.
"""

import argparse
import contextlib
import datetime
import os
import sys
import time
import warnings
from pathlib import Path

# None of these imports Keras or a backend (main sets KERAS_BACKEND first).
from measurements import (
    bench_accuracy,
    bench_check_estimator,
    bench_cold_script,
    bench_first_fit,
    bench_fit,
    bench_grid,
    bench_keras_optimizer,
    bench_large_fit,
    bench_lbfgs,
    bench_memory,
    bench_predict,
    bench_regressor,
    first_fit_child,
)
from peers import active_peers, quiet_peers, skipped_peers
from settings import (
    BACKENDS,
    DEFAULT_RST,
    REGRESSOR,
    RESULTS,
    ROOT,
    SETTINGS,
    SPLIT,
    TUTORIAL,
    default_backend,
    default_out,
)
from summary import (
    BACKENDS_TITLE,
    backend_name,
    backend_table,
    details,
    format_text,
    latest_reports,
    machine_info,
    peers_table,
    peers_title,
    report_backend,
    summarize,
    target_table,
    targets_title,
    write_json,
    write_rst,
)

from sk_keras_digits.tutorial import import_backend, load_split

#: The figures of a run, in the order they run (``--only`` picks some).
STEPS = (
    "first_fit",
    "cold_script",
    "fit",
    "keras_optimizer",
    "lbfgs_fit",
    "predict",
    "grid_search",
    "large_adam",
    "regressor",
    "memory",
    "accuracy",
    # Last: scikeras' checks seed and switch TensorFlow's global state.
    "check_estimator",
)


# ------------------------------------------------------------------- main
def _load_average():
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def run(quick=False, peers=True, note=None, backend=None, only=None, log=print):
    """Run the benchmarks; return the report (meta, config, results, summary).

    Parameters
    ----------
    quick : bool, default=False
        A smoke run (:data:`settings.SETTINGS` ``["quick"]``).
    peers : bool, default=True
        Measure the Keras peers the backend can run.
    note : str, default=None
        Kept in the report.
    backend : str, default=None
        The backend Keras runs on, as ``KERAS_BACKEND`` was set before Keras
        was imported; None: ``KERAS_BACKEND``, else TensorFlow. A
        RuntimeError if Keras turns out to run on another.
    only : list of str, default=None
        Run only these figures of :data:`STEPS` (None: all).
    log : callable, default=print
        Progress lines.

    Returns
    -------
    report : dict
    """
    backend = backend or default_backend()
    cfg = SETTINGS["quick" if quick else "full"]
    load_start = _load_average()
    started = time.perf_counter()
    data = load_split()
    results = {}
    steps = {
        "first_fit": lambda: bench_first_fit(cfg, peers, backend=backend),
        "cold_script": lambda: bench_cold_script(cfg, backend=backend),
        "fit": lambda: bench_fit(cfg, data, peers),
        "keras_optimizer": lambda: bench_keras_optimizer(cfg, data),
        "lbfgs_fit": lambda: bench_lbfgs(cfg, data),
        "predict": lambda: bench_predict(cfg, data, peers),
        "grid_search": lambda: bench_grid(cfg, data, peers),
        "large_adam": lambda: bench_large_fit(cfg),
        "regressor": lambda: bench_regressor(cfg),
        "memory": lambda: bench_memory(cfg, data),
        "accuracy": lambda: bench_accuracy(cfg, data, peers),
        "check_estimator": lambda: bench_check_estimator(peers),
    }
    names = [name for name in STEPS if only is None or name in only]
    running = import_backend()  # Keras, its backend and the training code
    if running != backend:
        raise RuntimeError(
            f"Keras runs on {running!r}, not on the backend asked for "
            f"({backend!r}): it was imported before KERAS_BACKEND was set."
        )
    skipped = skipped_peers(backend) if peers else {}
    for name, reason in skipped.items():
        log(f"  {name} skipped on {backend_name(backend)}: {reason}", flush=True)
    if active_peers(peers, backend):
        import keras  # noqa: F401

        quiet_peers()
    # The step during which TensorFlow was first imported, if it was.
    tensorflow_at = "imports" if "tensorflow" in sys.modules else None
    for name in names:
        step_start = time.perf_counter()
        # The peers print progress bars (SKLearnClassifier's predict cannot be
        # told verbose=0): their output is discarded.
        with (
            warnings.catch_warnings(),
            open(os.devnull, "w") as sink,
            contextlib.redirect_stdout(sink),
        ):
            warnings.simplefilter("ignore")
            result = steps[name]()
        if name in ("predict", "first_fit", "regressor"):
            results.update(result)
        else:
            results[name] = result
        if tensorflow_at is None and "tensorflow" in sys.modules:
            tensorflow_at = name
        log(f"  {name}: {time.perf_counter() - step_start:.1f} s", flush=True)
    options = (
        f" --backend {backend}"
        + (" --quick" if quick else "")
        + ("" if peers else " --skip-peers")
        + (f" --only {','.join(names)}" if only is not None else "")
    )
    report = {
        "meta": {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds"
            ),
            "command": "python benchmarks/run.py" + options,
            "backend": backend,
            "quick": quick,
            "skip_peers": not peers,
            "skipped_peers": skipped,
            "only": None if only is None else names,
            "note": note,
            "machine": machine_info(backend),
            "load_average": {"start": load_start, "end": _load_average()},
            "total_seconds": time.perf_counter() - started,
            # Whether anything in this process imported TensorFlow, and when.
            "tensorflow_imported": "tensorflow" in sys.modules,
            "tensorflow_imported_at": tensorflow_at,
        },
        "config": {
            "quick": quick,
            "backend": backend,
            "tutorial": dict(TUTORIAL),
            "regressor": dict(REGRESSOR),
            "split": {"train": SPLIT, "test": data[2].shape[0]},
            **{k: v for k, v in cfg.items()},
        },
        "results": results,
    }
    report["summary"] = summarize(results, backend)
    return report


def _figures(text):
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = sorted(set(names) - set(STEPS))
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown figure(s) {', '.join(unknown) or '(none given)'}; "
            f"choose among {', '.join(STEPS)}"
        )
    return names


def _check_keras_backend(backend):
    """Refuse a backend other than the one an already imported Keras runs on."""
    keras = sys.modules.get("keras")
    if keras is not None and keras.backend.backend() != backend:
        raise SystemExit(
            f"Keras was imported on {keras.backend.backend()!r} before "
            f"--backend {backend} was read; run the benchmark in a fresh process."
        )


def parse_args(argv=None):
    """The command line's options.

    Parameters
    ----------
    argv : list of str, default=None
        None: ``sys.argv[1:]``.

    Returns
    -------
    args : argparse.Namespace
        ``backend`` (``--backend``, else ``KERAS_BACKEND``, else
        ``"tensorflow"``; a ``KERAS_BACKEND`` outside
        :data:`settings.BACKENDS` is refused), ``quick``, ``skip_peers``,
        ``only`` (list of figures or None), ``out``, ``rst``, ``note`` and
        ``first_fit_child``. Nothing is set or imported.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--backend",
        choices=list(BACKENDS),
        default=default_backend(),
        help="the backend Keras runs on, set as KERAS_BACKEND for this process "
        "and the ones it starts (default: KERAS_BACKEND if set, else tensorflow)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: fewer repeats and fits"
    )
    parser.add_argument(
        "--skip-peers",
        action="store_true",
        help="leave out plain Keras, SKLearnClassifier and scikeras",
    )
    parser.add_argument(
        "--only",
        type=_figures,
        default=None,
        metavar="FIGURE[,FIGURE...]",
        help=f"run only these figures ({', '.join(STEPS)}); such a run "
        "writes benchmarks/results/partial-BACKEND.json by default and no RST",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"JSON output (default {default_out('BACKEND').relative_to(ROOT)}; "
        f"with --quick, {default_out('BACKEND', quick=True).relative_to(ROOT)})",
    )
    parser.add_argument(
        "--rst",
        type=Path,
        default=None,
        help=f"RST table (default {DEFAULT_RST.relative_to(ROOT)}; a --quick run "
        "writes none unless given), rendered from the latest JSON of each "
        "backend in the JSON output's folder",
    )
    parser.add_argument(
        "--note", help="a remark on the conditions, kept in the JSON and RST"
    )
    parser.add_argument("--first-fit-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.backend not in BACKENDS:  # a default from KERAS_BACKEND
        parser.error(
            f"KERAS_BACKEND={args.backend!r} is not benchmarked; "
            f"pass --backend {{{','.join(BACKENDS)}}}"
        )
    return args


def main(argv=None):
    """Parse the options, set the backend, run, print and write the results."""
    args = parse_args(argv)
    # Before anything imports Keras; the fresh processes inherit both.
    _check_keras_backend(args.backend)
    os.environ["KERAS_BACKEND"] = args.backend
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"  # before TensorFlow loads
    if args.first_fit_child:
        first_fit_child(args.first_fit_child)
        return 0
    if args.only is not None:
        out = args.out or RESULTS / f"partial-{args.backend}.json"
        rst = args.rst
    else:
        out = args.out or default_out(args.backend, args.quick)
        rst = args.rst or (None if args.quick else DEFAULT_RST)
    print(
        f"Benchmarking on {backend_name(args.backend)} "
        f"({'quick' if args.quick else 'full'} run"
        f"{', peers skipped' if args.skip_peers else ''}"
        f"{', only ' + ', '.join(args.only) if args.only else ''})...",
        flush=True,
    )
    report = run(
        quick=args.quick,
        peers=not args.skip_peers,
        note=args.note,
        backend=args.backend,
        only=args.only,
    )
    print()
    print(format_text(targets_title(args.backend), target_table(report["summary"])))
    print()
    print(format_text(peers_title(args.backend), peers_table(report["results"])))
    print()
    print("\n".join(f"* {line}" for line in details(report)))
    write_json(report, out)
    print(f"\nWrote {out}")
    if args.only is None:
        reports = latest_reports(out.parent, quick=args.quick, current=report)
        if len(reports) > 1:
            print()
            print(format_text(BACKENDS_TITLE, backend_table(reports)))
    else:
        reports = [report]
    if rst is not None:
        write_rst(reports, rst)
        names = ", ".join(backend_name(report_backend(r)) for r in reports)
        print(f"Wrote {rst} (backends: {names})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
