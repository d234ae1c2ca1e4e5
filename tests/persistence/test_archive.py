"""Tests for sk_keras_digits._persistence.archive: bounded zip and array reading."""

import io
import zipfile

import numpy as np
import pytest

from sk_keras_digits._persistence.archive import (
    MAX_MEMBERS,
    Refused,
    check_names,
    npy_size,
    open_zip,
    read_member,
    read_npy,
)
from tests._helpers import zip_bytes


def npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def forge_size(data, name, size):
    """The archive with member ``name``'s declared size set to ``size``."""
    data = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        info = archive.getinfo(name)
    # Local header: uncompressed size at offset 22; central directory: at 24.
    data[info.header_offset + 22 : info.header_offset + 26] = size.to_bytes(4, "little")
    start = data.rfind(b"PK\x01\x02")
    data[start + 24 : start + 28] = size.to_bytes(4, "little")
    return bytes(data)


def test_read_member_counts_what_it_decompresses():
    data = zip_bytes({"big": b"x" * 100_000, "small": b"abc"})
    with open_zip(data, "test") as archive:
        assert read_member(archive, "small", 10, "small") == b"abc"
        assert read_member(archive, "big", 100_000, "big") == b"x" * 100_000
        with pytest.raises(Refused, match="big declares 100000 bytes, more than"):
            read_member(archive, "big", 99_999, "big")


def test_read_member_does_not_trust_a_forged_size():
    """A member declaring fewer bytes than it holds: stopped, never inflated."""
    payload = b"\0" * 3_000_000
    data = forge_size(zip_bytes({"bomb": payload}), "bomb", 100)
    with open_zip(data, "test") as archive:
        assert archive.getinfo("bomb").file_size == 100
        with pytest.raises(Refused, match="bomb is corrupted"):
            read_member(archive, "bomb", 1000, "bomb")


def test_read_npy_checks_the_header_before_the_data():
    array = np.arange(12.0).reshape(3, 4)
    data = zip_bytes({"a.npy": npy_bytes(array)}, zipfile.ZIP_STORED)
    with open_zip(data, "test") as archive:
        read = read_npy(archive, "a.npy", np.dtype("<f8"), (3, 4), "a")
        assert np.array_equal(read, array) and read.flags.writeable
        with pytest.raises(Refused, match=r"shape \(3, 4\) and dtype float64"):
            read_npy(archive, "a.npy", np.dtype("<f8"), (4, 3), "a")
        with pytest.raises(Refused, match="declares shape"):
            read_npy(archive, "a.npy", np.dtype("<f4"), (3, 4), "a")


def test_read_npy_refuses_objects_and_trailing_bytes():
    objects = np.array([{"pickled": True}], dtype=object)
    buffer = io.BytesIO()
    np.save(buffer, objects, allow_pickle=True)
    trailing = npy_bytes(np.zeros(2)) + b"extra"
    data = zip_bytes({"o.npy": buffer.getvalue(), "t.npy": trailing})
    with open_zip(data, "test") as archive:
        with pytest.raises(Refused, match="dtype object"):
            read_npy(archive, "o.npy", np.dtype("<f8"), (1,), "o")
        with pytest.raises(Refused, match="more bytes than its array"):
            read_npy(archive, "t.npy", np.dtype("<f8"), (2,), "t")


def test_check_names_and_duplicates():
    data = zip_bytes({"a": b"1", "b": b"2"})
    with open_zip(data, "test") as archive:
        check_names(archive, ["a"], "test", optional=["b"])
        with pytest.raises(Refused, match=r"missing \['c'\], unexpected \['b'\]"):
            check_names(archive, ["a", "c"], "test")
    with pytest.warns(UserWarning, match="Duplicate name"):
        duplicated = zip_bytes({})
        buffer = io.BytesIO(duplicated)
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("a", b"1")
            archive.writestr("a", b"2")
    with pytest.raises(Refused, match="several members with the same name"):
        open_zip(buffer.getvalue(), "test")
    with pytest.raises(Refused, match="not a complete zip archive"):
        open_zip(b"PK\x03\x04 truncated", "test")


def test_npy_size():
    assert npy_size(np.dtype("f8"), (3, 4)) == 96 + 10_000
    assert npy_size(np.dtype("f4"), ()) == 4 + 10_000


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_members_compressed_without_a_bound_are_refused_unread(method):
    """Python inflates bzip2 and LZMA members by unbounded calls: never read."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("stored", b"1", compress_type=zipfile.ZIP_STORED)
        archive.writestr("bomb", b"\0" * 100_000, compress_type=method)
    with pytest.raises(Refused, match=rf"'bomb' compressed with method {method}"):
        open_zip(buffer.getvalue(), "test")


def test_read_npy_refuses_an_array_numpy_cannot_make():
    """The data are read inside the checks: a dtype of 0 bytes is refused."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<U0", "fortran_order": False, "shape": (3,)}
    )
    data = zip_bytes({"u.npy": header.getvalue()})
    with open_zip(data, "test") as archive:
        with pytest.raises(Refused, match="u is corrupted.*itemsize cannot be zero"):
            read_npy(archive, "u.npy", np.dtype("<U0"), (3,), "u")


@pytest.mark.parametrize("members", [MAX_MEMBERS + 1, 70_000])
def test_a_directory_of_too_many_members_is_refused_before_it_is_read(members):
    """zipfile would hold every entry in memory: the count is read first (from
    the zip64 record past 65,535 members)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for i in range(members):
            archive.writestr(str(i), b"")
    data = buffer.getvalue()
    with pytest.raises(Refused, match=rf"declares {members} members"):
        open_zip(data, "test")


def test_a_directory_of_long_names_is_refused():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for i in range(300):
            archive.writestr(f"{i}".ljust(60_000, "x"), b"")
    with pytest.raises(Refused, match=r"in a directory of \d+ bytes"):
        open_zip(buffer.getvalue(), "test")
    # Just below the limits, an archive opens.
    with open_zip(zip_bytes({str(i): b"" for i in range(1000)}), "test") as archive:
        assert len(archive.namelist()) == 1000


def test_a_zip64_record_the_end_record_does_not_announce_still_counts():
    """zipfile reads a zip64 record wherever a zip64 locator precedes the end
    record, even one declaring 1 member: the record's count is the one read."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for i in range(MAX_MEMBERS + 10):
            archive.writestr(str(i), b"")
    data = bytearray(buffer.getvalue())
    end = data.rfind(b"PK\x05\x06")
    assert data[end - 20 : end - 16] == b"PK\x06\x07"  # the locator
    one_member = (1).to_bytes(2, "little") * 2 + (46).to_bytes(4, "little")
    data[end + 8 : end + 16] = one_member  # 1 member, of 46 bytes
    with pytest.raises(Refused, match=rf"declares {MAX_MEMBERS + 10} members"):
        open_zip(bytes(data), "test")
