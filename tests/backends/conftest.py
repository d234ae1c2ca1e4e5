"""Helpers of the backend tests: Python in a fresh process on a chosen backend."""

import os
import subprocess
import sys
import textwrap

import pytest


def _run(script, backend, timeout=300):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(os.path.dirname(__file__)))]
        + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    )
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.fixture
def run_on():
    """``run_on(backend, script)``: a finished process running ``script``."""
    return lambda backend, script, **kwargs: _run(script, backend, **kwargs)
