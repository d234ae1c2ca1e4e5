"""Tests for the command line's output files: written whole or not at all."""

import errno
import os
import re
import stat
import subprocess
import sys
import textwrap

import pytest

from sk_keras_digits._cli._files import OutputError, write_output, write_text


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_write_text_writes_the_file_and_leaves_nothing_else(tmp_path):
    path = write_text(tmp_path / "report.html", "<p>é</p>")
    assert path == tmp_path / "report.html"
    assert path.read_bytes() == "<p>é</p>".encode()
    assert os.listdir(tmp_path) == ["report.html"]
    # The permissions a file created by open() gets, not mkstemp's 0600.
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~_umask()


def test_an_output_keeps_the_earlier_files_permissions(tmp_path):
    path = tmp_path / "predictions.png"
    path.write_bytes(b"earlier")
    path.chmod(0o640)
    write_output(path, lambda file: file.write(b"later"))
    assert path.read_bytes() == b"later"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_the_temporary_is_private_unpredictable_and_beside_the_file(tmp_path):
    path = tmp_path / "predictions.png"
    path.write_bytes(b"earlier")
    names = []
    for later in (b"second", b"third"):
        earlier = path.read_bytes()

        def write(file, later=later, earlier=earlier):
            file.write(later)
            (temp,) = set(os.listdir(tmp_path)) - {"predictions.png"}
            names.append(temp)
            assert re.fullmatch(r"\.predictions\.png\..+\.tmp", temp)
            # Others cannot read it while it is written; the output is unchanged.
            assert stat.S_IMODE((tmp_path / temp).stat().st_mode) == 0o600
            assert path.read_bytes() == earlier

        write_output(path, write)
        assert path.read_bytes() == later
    assert names[0] != names[1]
    assert os.listdir(tmp_path) == ["predictions.png"]


def _fail_midway(exc):
    def write(file):
        file.write(b"\x89PNG\r\n\x1a\n truncated")
        raise exc

    return write


@pytest.mark.parametrize(
    "exc, expected",
    [
        (OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), OutputError),
        (KeyboardInterrupt(), KeyboardInterrupt),
        (ValueError("bad figure"), ValueError),
    ],
    ids=["disk-full", "interrupt", "other-error"],
)
def test_a_write_failing_midway_keeps_the_earlier_file(tmp_path, exc, expected):
    path = tmp_path / "predictions.png"
    path.write_bytes(b"earlier, complete")
    with pytest.raises(expected) as info:
        write_output(path, _fail_midway(exc))
    assert path.read_bytes() == b"earlier, complete"
    assert os.listdir(tmp_path) == ["predictions.png"]  # no temporary left
    if expected is OutputError:
        assert str(info.value) == (
            f"could not write {path}: [Errno {errno.ENOSPC}] "
            f"{os.strerror(errno.ENOSPC)}"
        )
        assert info.value.errno == errno.ENOSPC
        assert info.value.filename == str(path)
    else:
        assert info.value is exc


def test_a_failing_flush_to_disk_keeps_the_earlier_file(tmp_path, monkeypatch):
    """Where a full disk is reported only when the data is flushed."""
    path = tmp_path / "report.html"
    path.write_text("earlier")

    def fsync(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OutputError, match=re.escape(f"could not write {path}: ")):
        write_text(path, "later")
    assert path.read_text() == "earlier"
    assert os.listdir(tmp_path) == ["report.html"]


def test_a_folder_that_is_gone_names_the_file(tmp_path):
    path = tmp_path / "gone" / "report.html"
    with pytest.raises(OutputError) as info:
        write_text(path, "text")
    assert str(info.value) == (
        f"could not write {path}: [Errno {errno.ENOENT}] {os.strerror(errno.ENOENT)}"
    )


def test_a_symbolic_link_at_the_name_is_replaced_not_followed(tmp_path):
    target = tmp_path / "elsewhere.txt"
    target.write_text("not ours")
    link = tmp_path / "report.html"
    link.symlink_to(target)
    write_text(link, "report")
    assert not link.is_symlink()
    assert link.read_text() == "report"
    assert target.read_text() == "not ours"


def test_a_real_write_error_keeps_the_earlier_file(tmp_path):
    """A write the system refuses (a file size limit, as a full disk would),
    in a process of its own: the earlier file stays whole and is named."""
    pytest.importorskip("resource")
    path = tmp_path / "predictions.png"
    path.write_bytes(b"earlier, complete")
    script = textwrap.dedent(
        f"""
        import resource, signal, sys
        from sk_keras_digits._cli._files import OutputError, write_text

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write, not us
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        try:
            write_text({str(path)!r}, "x" * 100_000)
        except OutputError as exc:
            print(exc)
            sys.exit(3)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 3, result.stderr
    assert result.stdout.strip() == (
        f"could not write {path}: [Errno {errno.EFBIG}] {os.strerror(errno.EFBIG)}"
    )
    assert path.read_bytes() == b"earlier, complete"
    assert os.listdir(tmp_path) == ["predictions.png"]
