"""Fixtures of the command line's tests."""

import subprocess
import sys

import pytest


@pytest.fixture
def run_module():
    """``python -m sk_keras_digits ARGS`` in a fresh process, as a function."""

    def run(*args, timeout=120):
        return subprocess.run(
            [sys.executable, "-m", "sk_keras_digits", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run
