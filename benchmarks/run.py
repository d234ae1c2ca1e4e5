"""Benchmark sk_keras_digits against MLPClassifier, plain Keras and the wrappers.

One command measures, in one process and on the same data (scikit-learn's 8x8
digits, the tutorial's split: the first 1000 digits train, the other 797
test), ``KerasDigitClassifier`` against ``MLPClassifier`` with the same
settings, and (unless ``--skip-peers``) the tutorial's plain Keras code,
``keras.wrappers.SKLearnClassifier`` and scikeras' ``KerasClassifier`` on the
same network. It prints a table of the figures with their targets, a table of
absolute times, writes every number to JSON and the table to
``docs/benchmark_table.rst``::

    python benchmarks/run.py                        # full run, a few minutes
    python benchmarks/run.py --quick --skip-peers   # smoke run, ~40 s

See ``benchmarks/README.md`` for what each figure means.

The modules beside this entry point: ``settings`` (repeats, targets, paths),
``peers`` (the estimators measured), ``measurements`` (the ``bench_*``
functions) and ``summary`` (tables, JSON, RST). The tutorial's data, models,
grid search and text table come from :mod:`sk_keras_digits.tutorial`, the
``sk-keras-digits`` command's own.
"""

import argparse
import contextlib
import datetime
import os
import sys
import time
import warnings
from pathlib import Path

from measurements import (
    bench_accuracy,
    bench_check_estimator,
    bench_first_fit,
    bench_fit,
    bench_grid,
    bench_keras_optimizer,
    bench_memory,
    bench_predict,
    first_fit_child,
)
from peers import quiet_peers
from settings import (
    DEFAULT_OUT,
    DEFAULT_QUICK_OUT,
    DEFAULT_RST,
    ROOT,
    SETTINGS,
    SPLIT,
    TUTORIAL,
)
from summary import (
    PEERS_TITLE,
    TARGETS_TITLE,
    details,
    format_text,
    machine_info,
    peers_table,
    summarize,
    target_table,
    write_json,
    write_rst,
)

from sk_keras_digits.tutorial import import_backend, load_split


# ------------------------------------------------------------------- main
def _load_average():
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def run(quick=False, peers=True, note=None, log=print):
    """Run every benchmark; return the report (meta, config, results, summary)."""
    cfg = SETTINGS["quick" if quick else "full"]
    load_start = _load_average()
    started = time.perf_counter()
    data = load_split()
    results = {}
    steps = [
        ("first_fit", lambda: bench_first_fit(cfg, peers)),
        ("fit", lambda: bench_fit(cfg, data, peers)),
        ("keras_optimizer", lambda: bench_keras_optimizer(cfg, data)),
        ("predict", lambda: bench_predict(cfg, data, peers)),
        ("grid_search", lambda: bench_grid(cfg, data, peers)),
        ("memory", lambda: bench_memory(cfg, data)),
        ("accuracy", lambda: bench_accuracy(cfg, data, peers)),
        # Last: scikeras' checks seed and switch TensorFlow's global state.
        ("check_estimator", lambda: bench_check_estimator(peers)),
    ]
    import_backend()  # TensorFlow, Keras and the training code, outside timings

    if peers:
        import keras  # noqa: F401

        quiet_peers()
    for name, step in steps:
        step_start = time.perf_counter()
        # The peers print progress bars (SKLearnClassifier's predict cannot be
        # told verbose=0): their output is discarded.
        with (
            warnings.catch_warnings(),
            open(os.devnull, "w") as sink,
            contextlib.redirect_stdout(sink),
        ):
            warnings.simplefilter("ignore")
            result = step()
        if name == "predict":
            results.update(result)
        else:
            results[name] = result
        log(f"  {name}: {time.perf_counter() - step_start:.1f} s", flush=True)
    report = {
        "meta": {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds"
            ),
            "command": "python benchmarks/run.py"
            + (" --quick" if quick else "")
            + ("" if peers else " --skip-peers"),
            "quick": quick,
            "skip_peers": not peers,
            "note": note,
            "machine": machine_info(),
            "load_average": {"start": load_start, "end": _load_average()},
            "total_seconds": time.perf_counter() - started,
        },
        "config": {
            "quick": quick,
            "tutorial": dict(TUTORIAL),
            "split": {"train": SPLIT, "test": data[2].shape[0]},
            **{k: v for k, v in cfg.items()},
        },
        "results": results,
    }
    report["summary"] = summarize(results)
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: fewer repeats and fits"
    )
    parser.add_argument(
        "--skip-peers",
        action="store_true",
        help="leave out plain Keras, SKLearnClassifier and scikeras",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"JSON output (default {DEFAULT_OUT.relative_to(ROOT)}; with --quick, "
        f"{DEFAULT_QUICK_OUT.relative_to(ROOT)})",
    )
    parser.add_argument(
        "--rst",
        type=Path,
        default=None,
        help=f"RST table (default {DEFAULT_RST.relative_to(ROOT)}; a --quick run "
        "writes none unless given)",
    )
    parser.add_argument(
        "--note", help="a remark on the conditions, kept in the JSON and RST"
    )
    parser.add_argument("--first-fit-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"  # before TensorFlow loads
    if args.first_fit_child:
        first_fit_child(args.first_fit_child)
        return 0
    out = args.out or (DEFAULT_QUICK_OUT if args.quick else DEFAULT_OUT)
    rst = args.rst or (None if args.quick else DEFAULT_RST)
    print(
        f"Benchmarking ({'quick' if args.quick else 'full'} run"
        f"{', peers skipped' if args.skip_peers else ''})...",
        flush=True,
    )
    report = run(quick=args.quick, peers=not args.skip_peers, note=args.note)
    print()
    print(format_text(TARGETS_TITLE, target_table(report["summary"])))
    print()
    print(format_text(PEERS_TITLE, peers_table(report["results"])))
    print()
    print("\n".join(f"* {line}" for line in details(report)))
    write_json(report, out)
    print(f"\nWrote {out}")
    if rst is not None:
        write_rst(report, rst)
        print(f"Wrote {rst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
