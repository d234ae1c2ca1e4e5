"""Tests for the ``sk-keras-digits`` command's options and their checks."""

import contextlib
import errno
import io
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sk_keras_digits import __version__
from sk_keras_digits._cli import _main
from sk_keras_digits._cli._figures import FIGURES
from sk_keras_digits._cli._main import main
from sk_keras_digits._cli._parser import FULL, MAX_HIDDEN_SIZE, QUICK, parse_args
from sk_keras_digits._cli._report import REPORT_NAME

OUTPUT_NAMES = [*FIGURES, REPORT_NAME]

OPTIONS = [
    "--out",
    "--quick",
    "--seeds",
    "--hidden-sizes",
    "--cv",
    "--images",
    "--no-progress",
    "--version",
    "--help",
]


# ------------------------------------------------------------ options, in-process
def test_help_documents_every_option(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: sk-keras-digits")
    for option in OPTIONS:
        assert option in out
    out = " ".join(out.split())  # argparse wraps to the terminal's width
    assert "default: ./sk-keras-digits-report" in out
    assert "Exit status: 0 on success, 2 for a bad option" in out


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"sk-keras-digits {__version__}"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["--cv", "1"], "argument --cv: expected an integer from 2 to 98, got 1"),
        (["--cv", "500"], "argument --cv: expected an integer from 2 to 98, got 500"),
        (["--seeds", "two"], "argument --seeds: expected an integer from 1 to 1000"),
        (["--hidden-sizes", "5", "0"], "argument --hidden-sizes: expected an integer"),
        (["--images"], "argument --images: expected one argument"),
        (
            ["--seeds", "1001"],
            "argument --seeds: expected an integer from 1 to 1000, got 1001",
        ),
        (["--seeds", "9" * 50], "argument --seeds: expected an integer from 1 to"),
    ],
)
def test_bad_options_exit_2_with_a_clear_message(argv, message, capsys, tmp_path):
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: sk-keras-digits")
    assert message in err
    assert not (tmp_path / "out").exists()


def _error_line(err):
    """The one ``error:`` line of argparse's answer on stderr, after its usage."""
    assert "Traceback" not in err
    assert err.startswith("usage: sk-keras-digits") and err.endswith("\n")
    *usage, line = err.splitlines()
    assert all(u.startswith(("usage: ", " ")) for u in usage), err
    assert line.startswith("sk-keras-digits: error: "), err
    return line


@pytest.fixture
def no_job(monkeypatch):
    """``run`` replaced by a stand-in that records whether the job started."""
    calls = []
    monkeypatch.setattr(_main, "run", lambda settings: calls.append(settings))
    return calls


def test_help_states_the_hidden_size_bound(capsys):
    assert main(["--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"each from 1 to {MAX_HIDDEN_SIZE}" in help_text
    assert "checked by writing a file into it before the job starts" in help_text


@pytest.mark.parametrize(
    "sizes, shown",
    [
        (["0"], "0"),
        (["5", "-3"], "-3"),
        ([str(10**12)], str(10**12)),
        ([str(MAX_HIDDEN_SIZE + 1)], str(MAX_HIDDEN_SIZE + 1)),
        (["2.5"], "'2.5'"),
        (["1e3"], "'1e3'"),
        ([""], "''"),
        (["ten"], "'ten'"),
        (["9" * 5000], "'99999"),  # past int()'s digit limit: cut, one line
        (["9" * 4000], "999999999999999999999999999999... (4000 digits)"),
    ],
)
def test_impossible_hidden_sizes_exit_2_before_the_job(
    sizes, shown, capsys, tmp_path, no_job
):
    out = tmp_path / "out"
    assert main(["--out", str(out), "--hidden-sizes", *sizes]) == 2
    line = _error_line(capsys.readouterr().err)
    assert line.startswith(
        "sk-keras-digits: error: argument --hidden-sizes: expected an integer "
        f"from 1 to {MAX_HIDDEN_SIZE}, got {shown}"
    )
    assert len(line) < 200
    assert not no_job and not out.exists()


def test_largest_hidden_size_is_accepted(tmp_path):
    settings = parse_args(
        ["--out", str(tmp_path), "--hidden-sizes", "1", str(MAX_HIDDEN_SIZE)]
    )
    assert settings.hidden_sizes == (1, MAX_HIDDEN_SIZE)


_TOKENS = st.one_of(
    st.integers(-5, 2 * MAX_HIDDEN_SIZE).map(str),
    st.integers(1, MAX_HIDDEN_SIZE).map(str),
    st.integers(10**6, 10**30).map(str),
    # No letter that starts an option name (argparse takes "--o" for --out).
    st.text(alphabet="0123456789-+._ e,x\u0663", max_size=8),
)


def _valid_size(token):
    try:
        value = int(token)
    except ValueError:
        return False
    return 1 <= value <= MAX_HIDDEN_SIZE


@settings(max_examples=200, deadline=None)
@given(tokens=st.lists(_TOKENS, max_size=5))
def test_hidden_sizes_are_accepted_in_bounds_or_refused_in_one_line(
    tokens, tmp_path_factory
):
    out = tmp_path_factory.getbasetemp() / "hypothesis-out"
    out.mkdir(exist_ok=True)
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            settings = parse_args(["--out", str(out), "--hidden-sizes", *tokens])
    except SystemExit as exc:
        assert exc.code == 2
        line = _error_line(err.getvalue())
        first_bad = next((t for t in tokens if not _valid_size(t)), None)
        if first_bad is not None and not first_bad.startswith("-"):
            assert "argument --hidden-sizes: expected an integer from 1 to " in line
        assert (
            tokens == []
            or not all(map(_valid_size, tokens))
            or any(t.startswith("-") for t in tokens)
        )
    else:
        assert tokens and all(map(_valid_size, tokens))
        assert settings.hidden_sizes == tuple(sorted({int(t) for t in tokens}))
        assert all(
            isinstance(h, int) and 1 <= h <= MAX_HIDDEN_SIZE
            for h in settings.hidden_sizes
        )
    assert sorted(p.name for p in out.iterdir()) == []  # no probe left behind


def test_out_that_is_a_file(capsys, tmp_path):
    path = tmp_path / "taken.txt"
    path.write_text("not a folder")
    assert main(["--quick", "--out", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"--out '{path}' is an existing file; expected a folder" in err
    assert path.read_text() == "not a folder"


def test_out_below_a_file(capsys, tmp_path):
    (tmp_path / "file").write_text("")
    assert main(["--out", str(tmp_path / "file" / "sub")]) == 2
    assert "cannot create the folder" in capsys.readouterr().err


@pytest.mark.parametrize("name", OUTPUT_NAMES)
def test_out_with_an_output_name_taken_by_a_folder(name, capsys, tmp_path, no_job):
    (tmp_path / name).mkdir()
    assert main(["--quick", "--out", str(tmp_path)]) == 2
    line = _error_line(capsys.readouterr().err)
    assert line == (
        f"sk-keras-digits: error: --out '{tmp_path}': {name!r} in it is a folder; "
        "expected a file there or none"
    )
    assert not no_job
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # nothing added


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_out_with_an_output_name_taken_by_a_pipe(capsys, tmp_path, no_job):
    os.mkfifo(tmp_path / "mistakes.png")  # opening it to write would block
    assert main(["--out", str(tmp_path)]) == 2
    line = _error_line(capsys.readouterr().err)
    assert line.endswith(
        "'mistakes.png' in it is not a regular file; expected a file there or none"
    )
    assert not no_job


def test_out_with_an_output_file_that_cannot_be_written(
    capsys, tmp_path, no_job, monkeypatch
):
    """An output file the user may not write (EACCES, which root never gets
    here: opening it is made to fail so), while os.access (made to say yes,
    as it does to root) sees a writable folder."""
    import builtins

    target = tmp_path / "loss_curves.png"
    target.write_bytes(b"theirs")
    real_open = builtins.open

    def denying_open(file, *args, **kwargs):
        if os.fspath(file) == os.fspath(target):
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", denying_open)
    monkeypatch.setattr(os, "access", lambda *args, **kwargs: True)
    assert main(["--quick", "--out", str(tmp_path)]) == 2
    line = _error_line(capsys.readouterr().err)
    assert line.startswith(
        f"sk-keras-digits: error: --out '{tmp_path}': cannot write 'loss_curves.png' "
        "in it ("
    )
    assert not no_job


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc")
def test_out_under_proc(capsys, no_job):
    """os.access says root may write into /proc/self; writing says otherwise."""
    assert main(["--quick", "--out", "/proc/self"]) == 2
    line = _error_line(capsys.readouterr().err)
    assert line.startswith(
        "sk-keras-digits: error: --out '/proc/self': cannot write into the folder ("
    )
    assert not no_job


def test_out_on_a_read_only_filesystem_removes_the_folders_it_made(
    capsys, tmp_path, no_job, monkeypatch
):
    """A folder that refuses files (a read-only mount) is refused, and what
    was created for it is removed."""

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    out = tmp_path / "new" / "sub"
    assert main(["--out", str(out)]) == 2
    line = _error_line(capsys.readouterr().err)
    assert line == (
        f"sk-keras-digits: error: --out '{out}': cannot write into the folder "
        f"({os.strerror(errno.EROFS)})"
    )
    assert not no_job
    assert list(tmp_path.iterdir()) == []  # "new" and "new/sub" removed again


def test_out_check_leaves_the_folder_as_it_was(tmp_path):
    (tmp_path / REPORT_NAME).write_text("an older report")
    parse_args(["--out", str(tmp_path)])
    assert sorted(p.name for p in tmp_path.iterdir()) == [REPORT_NAME]
    assert (tmp_path / REPORT_NAME).read_text() == "an older report"


def test_out_with_odd_characters_is_reported_on_one_line(capsys, tmp_path):
    (tmp_path / "file").write_text("")
    value = str(tmp_path / "file" / "a\nb")
    assert main(["--out", value]) == 2
    line = _error_line(capsys.readouterr().err)
    assert line.startswith(f"sk-keras-digits: error: --out {value!r}: cannot create")


def test_parse_args_quick_defaults_and_explicit_options(tmp_path):
    out = tmp_path / "a" / "b"
    settings = parse_args(["--quick", "--out", str(out)])
    assert out.is_dir()  # created, with its parents
    assert settings.out == out
    assert (settings.seeds, settings.cv, settings.images) == (
        QUICK["seeds"],
        QUICK["cv"],
        QUICK["images"],
    )
    assert settings.hidden_sizes == QUICK["hidden_sizes"]
    assert settings.progress and settings.quick

    settings = parse_args(
        ["--quick", "--out", str(out), "--seeds", "3", "--hidden-sizes", "9", "4", "9"]
    )
    assert settings.seeds == 3
    assert settings.hidden_sizes == (4, 9)  # sorted, duplicates dropped
    assert settings.cv == QUICK["cv"]

    settings = parse_args(["--out", str(out), "--no-progress"])
    assert settings.hidden_sizes == FULL["hidden_sizes"]
    assert (settings.seeds, settings.cv) == (FULL["seeds"], FULL["cv"])
    assert not settings.progress and not settings.quick


def test_default_out_is_relative_to_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = parse_args([])
    assert settings.out == Path("sk-keras-digits-report")
    assert (tmp_path / "sk-keras-digits-report").is_dir()


# ----------------------------------------------------------------- subprocesses
def test_module_help_is_fast_and_does_not_import_tensorflow(tmp_path, run_module):
    result = run_module("--help", timeout=60)
    assert result.returncode == 0
    assert "usage: sk-keras-digits" in result.stdout
    assert result.stderr == ""
    code = textwrap.dedent(
        f"""
        import sys
        from sk_keras_digits._cli._parser import parse_args
        parse_args(["--quick", "--out", {str(tmp_path / "o")!r}])
        print(sorted(m for m in ("tensorflow", "keras", "matplotlib")
                     if m in sys.modules))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_module_bad_option_exit_code(run_module):
    result = run_module("--quick", "--cv", "zero", timeout=60)
    assert result.returncode == 2
    assert (
        "argument --cv: expected an integer from 2 to 98, got 'zero'" in result.stderr
    )
    assert result.stdout == ""


@pytest.mark.parametrize(
    "args, message",
    [
        (["--hidden-sizes", str(10**12)], "--hidden-sizes: expected an integer"),
        (["--hidden-sizes", "0"], "--hidden-sizes: expected an integer"),
        ([], "'report.html' in it is a folder"),  # taken by a folder below
    ],
)
def test_module_refuses_bad_sizes_and_out_at_once_without_tensorflow(
    args, message, tmp_path
):
    """In a fresh process: exit 2 and one error line within a second of
    main()'s start, TensorFlow not imported, no traceback."""
    (tmp_path / REPORT_NAME).mkdir()
    argv = ["--quick", "--out", str(tmp_path), *args]
    code = textwrap.dedent(
        f"""
        import sys, time
        from sk_keras_digits._cli import main
        tic = time.perf_counter()
        status = main({argv!r})
        seconds = time.perf_counter() - tic
        print(status, round(seconds, 3), "tensorflow" in sys.modules)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    status, seconds, tensorflow = result.stdout.split()
    assert (status, tensorflow) == ("2", "False"), result.stderr
    assert float(seconds) < 1.0
    assert message in _error_line(result.stderr)


def test_cv_may_be_as_many_folds_as_the_digits_allow(tmp_path):
    """98 folds: as many as the training digits' smallest class has members."""
    from sk_keras_digits._cli._parser import most_folds

    assert most_folds() == 98
    settings = parse_args(["--quick", "--cv", "98", "--out", str(tmp_path)])
    assert settings.cv == 98


@pytest.mark.parametrize("name", OUTPUT_NAMES)
def test_out_with_an_output_name_that_is_a_link_writes_nothing_through_it(
    name, capsys, tmp_path, no_job
):
    """A link (dangling or not) would have the job write wherever it points:
    refused, and its target neither created nor changed."""
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / name).symlink_to(elsewhere / "target")
    assert main(["--quick", "--out", str(out)]) == 2
    line = _error_line(capsys.readouterr().err)
    assert line.endswith(
        f"{name!r} in it is a symbolic link; expected a file there or none"
    )
    assert not no_job and list(elsewhere.iterdir()) == []


@pytest.mark.parametrize(
    "value, message",
    [
        ("", "is empty; expected a folder path"),
        ("   ", "is empty; expected a folder path"),
        ("a" * 300, "cannot use the path (File name too long)"),
    ],
    ids=["empty", "blank", "name_too_long"],
)
def test_out_that_is_no_usable_path_exits_2(value, message, capsys, no_job):
    assert main(["--quick", "--out", value]) == 2
    line = _error_line(capsys.readouterr().err)
    assert message in line and not no_job
