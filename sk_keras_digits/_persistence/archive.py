"""Zip archives: bounded reading of untrusted ones, and the one zip writer.

A model file is a zip archive holding other zip archives (``state.npz`` and
``model.keras``). Nothing here trusts the sizes an archive declares in its
headers: every member is decompressed as a stream and the bytes actually
produced are counted, so a member that inflates past the limit its reader set
is refused as soon as it does, before the excess is held in memory. Arrays are
read from ``.npy`` members only after their header (dtype, shape, order)
matched what the caller expected, and only as many bytes as that shape needs.

The bytes one file may decompress, nested archives included, are a
:class:`Budget` (``load``'s ``max_bytes``), which every read is counted
against. Every problem raises :class:`~.errors.Refused`, whose message is the
problem alone; the caller names the file.

:func:`write_zip` is how every archive of a model file is written (the file
itself, ``model.keras``, a pipeline's steps), member by member through
:func:`write_member`.
"""

import io
import math
import struct
import zipfile

import numpy as np

from .errors import Refused
from .json_values import loads

# Bytes decompressed per read: small enough that overshooting a limit by one
# chunk is harmless.
_CHUNK = 1 << 20
# The compression methods read: Python inflates a deflated member by bounded
# chunks, but a bzip2 or LZMA member decompresses each 1 MiB of input in one
# unbounded call (a few hundred bytes can inflate to gigabytes).
_COMPRESSIONS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
#: Most members, and bytes of central directory, an archive may declare: a
#: model file and its nested archives hold a few to a few hundred members.
MAX_MEMBERS = 65_535
MAX_DIRECTORY_BYTES = 16 * 2**20
# Bytes of a zip's end-of-directory record without its comment, and of the
# zip64 locator that precedes it.
_END_RECORD = 22
_ZIP64_LOCATOR = 20
#: Bytes of a zip64 end-of-directory record (without extensible data).
_ZIP64_RECORD = 56
# Most bytes an .npy header takes (NumPy's own limit on what it parses).
NPY_HEADER_LIMIT = 10_000
# Room for a zip member's local header, central-directory entry and name.
MEMBER_OVERHEAD = 512


_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


#: The end of a message refusing a file larger than what is left of the budget.
LARGER_MAX_BYTES = "If you trust the file, load it with a larger max_bytes"


class Budget:
    """Bytes that may still be decompressed from one file, nested files included.

    Parameters
    ----------
    max_bytes : int
        ``load``'s ``max_bytes``.

    Attributes
    ----------
    max_bytes : int
    left : int
        Bytes not yet decompressed.
    """

    def __init__(self, max_bytes):
        self.max_bytes = max_bytes
        self.left = max_bytes

    @property
    def hint(self):
        """Appended to a refusal where what is left of the budget was the limit."""
        return (
            f"; that is what is left of max_bytes={self.max_bytes}. {LARGER_MAX_BYTES}"
        )

    def reserve(self, size, what):
        """Refuse ``what`` (a sentence up to its size) if ``size`` exceeds the rest.

        Returns
        -------
        size : int
        """
        if size > self.left:
            raise Refused(
                f"{what}, more than the {self.left} left of "
                f"max_bytes={self.max_bytes}. {LARGER_MAX_BYTES}."
            )
        return size

    def read(self, archive, name, limit, what, hint=None):
        """The bytes of member ``name`` (at most ``limit``), counted.

        ``hint`` (by default :attr:`hint`, where the budget is below
        ``limit``) is appended to a refusal of a member too large.
        """
        if hint is None:
            hint = self.hint if limit > self.left else ""
        data = read_member(archive, name, min(limit, self.left), what, hint)
        self.left -= len(data)
        return data

    def read_json(self, archive, name, limit, what=None):
        """Member ``name`` parsed as strict JSON (at most ``limit`` bytes)."""
        what = what or f"member '{name}'"
        return loads(self.read(archive, name, limit, what), what)


def open_zip(source, what):
    """Open ``source`` (a path, bytes or a binary file) as a zip archive.

    Only the central directory is read. Duplicate member names, which make
    "the member called X" ambiguous, are refused.

    Parameters
    ----------
    source : str, bytes or file object
    what : str
        How to call the archive in messages.

    Returns
    -------
    archive : zipfile.ZipFile
    """
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    _check_directory(source, what)
    try:
        archive = zipfile.ZipFile(source)
    except Exception as exc:
        raise Refused(f"{what} is not a complete zip archive ({exc}).") from exc
    names = archive.namelist()
    if len(set(names)) != len(names):
        archive.close()
        raise Refused(f"{what} holds several members with the same name.")
    odd = [
        info for info in archive.infolist() if info.compress_type not in _COMPRESSIONS
    ]
    if odd:
        archive.close()
        raise Refused(
            f"{what} holds member {odd[0].filename[:80]!r} compressed with method "
            f"{odd[0].compress_type}; only stored (0) and deflated (8) members are "
            "read (Python decompresses the others without a bound on their size)."
        )
    return archive


def _check_directory(file, what):
    """Refuse an archive whose central directory declares more than
    :data:`MAX_MEMBERS` members or :data:`MAX_DIRECTORY_BYTES` bytes.

    Read from the end-of-directory records before :mod:`zipfile` reads the
    directory itself, which holds every member's entry in memory (about ten
    times its bytes): a small file of millions of empty members would cost
    gigabytes. An archive without an end record is left to :mod:`zipfile`
    to refuse.
    """
    end = file.seek(0, io.SEEK_END)
    tail = min(end, _END_RECORD + 0xFFFF + _ZIP64_LOCATOR)
    file.seek(end - tail)
    data = file.read(tail)
    file.seek(0)
    at = data.rfind(b"PK\x05\x06", 0, max(len(data) - _END_RECORD + 4, 0))
    if at < 0:
        return
    members, size = struct.unpack_from("<HI", data, at + 10)
    locator = at - _ZIP64_LOCATOR
    if locator >= 0 and data[locator : locator + 4] == b"PK\x06\x07":
        # A zip64 locator makes zipfile read the zip64 record whatever the
        # end record says: Python 3.11 and 3.12 the one right before the
        # locator, later ones the one at the locator's offset. Both are
        # counted, the larger claim winning.
        (record,) = struct.unpack_from("<Q", data, locator + 8)
        for offset in {end - tail + locator - _ZIP64_RECORD, record}:
            if not 0 <= offset <= end - _ZIP64_RECORD:
                continue
            file.seek(offset)
            zip64 = file.read(_ZIP64_RECORD)
            if zip64[:4] == b"PK\x06\x06":
                entries, total, directory = struct.unpack_from("<QQQ", zip64, 24)
                members = max(members, entries, total)
                size = max(size, directory)
        file.seek(0)
    if members > MAX_MEMBERS or size > MAX_DIRECTORY_BYTES:
        raise Refused(
            f"{what} declares {members} members in a directory of {size} bytes; "
            f"at most {MAX_MEMBERS} members and {MAX_DIRECTORY_BYTES} bytes are "
            "read (a model file holds a few)."
        )


def check_names(archive, expected, what, optional=()):
    """Refuse an archive whose members are not exactly ``expected``.

    Parameters
    ----------
    archive : zipfile.ZipFile
    expected : iterable of str
        Members that must be present.
    what : str
        How to call the archive in messages.
    optional : iterable of str, default=()
        Members that may be present.
    """
    names = archive.namelist()
    missing = [name for name in expected if name not in names]
    allowed = set(expected) | set(optional)
    extra = [name for name in names if name not in allowed]
    if missing or extra:
        found = names if len(names) <= 10 else names[:10] + ["..."]
        raise Refused(
            f"{what} should hold the members {sorted(allowed)}; "
            f"missing {missing}, unexpected {extra[:10]} (found {found})."
        )


def read_member(archive, name, limit, what, hint=""):
    """The bytes of member ``name``, decompressing at most ``limit`` bytes.

    Parameters
    ----------
    archive : zipfile.ZipFile
    name : str
    limit : int
        Most bytes the member may hold once decompressed.
    what : str
        How to call the member in messages.
    hint : str, default=""
        Appended to the message when the member is too large.

    Returns
    -------
    data : bytes
    """
    info = archive.getinfo(name)
    if info.file_size > limit:
        raise Refused(
            f"{what} declares {info.file_size} bytes, more than the {limit} "
            f"bytes it may hold{hint}."
        )
    chunks, size = [], 0
    try:
        with archive.open(info) as stream:
            while True:
                chunk = stream.read(_CHUNK)
                if not chunk:
                    break
                size += len(chunk)
                if size > limit:
                    raise Refused(
                        f"{what} holds more than the {limit} bytes it may hold "
                        f"(it inflates past them: a decompression bomb?){hint}."
                    )
                chunks.append(chunk)
    except Refused:
        raise
    except Exception as exc:
        raise Refused(f"{what} is corrupted ({exc}).") from exc
    return b"".join(chunks)


def npy_size(dtype, shape):
    """Bytes an .npy member of this dtype and shape holds, header included."""
    return _array_bytes(dtype, shape) + NPY_HEADER_LIMIT


def _array_bytes(dtype, shape):
    """Bytes of the data of an array of this dtype and shape."""
    return math.prod(shape) * dtype.itemsize


def _read_header(stream, what):
    """``(shape, fortran_order, dtype)`` from the ``.npy`` header at ``stream``."""
    version = np.lib.format.read_magic(stream)
    read_header = _HEADER_READERS.get(version)
    if read_header is None:
        raise Refused(f"{what} is an .npy array of unknown version {version}.")
    return read_header(stream, max_header_size=NPY_HEADER_LIMIT)


def read_npy_header(archive, name, what):
    """The dtype and shape of ``.npy`` member ``name``, read from its header only.

    Returns
    -------
    dtype : numpy.dtype
    shape : tuple of int
    """
    try:
        with archive.open(name) as stream:
            shape, fortran_order, dtype = _read_header(stream, what)
    except Refused:
        raise
    except Exception as exc:
        raise Refused(f"{what} is corrupted or not an .npy array ({exc}).") from exc
    if fortran_order:
        raise Refused(f"{what} holds a Fortran-ordered array.")
    return dtype, shape


def read_npy(archive, name, dtype, shape, what):
    """The array in ``.npy`` member ``name``, which must hold ``dtype`` and ``shape``.

    The header is read and compared first; then exactly the bytes of that
    array, and the member must end there (its CRC-32 is checked).

    Parameters
    ----------
    archive : zipfile.ZipFile
    name : str
    dtype : numpy.dtype
        Expected dtype (no objects: nothing is unpickled).
    shape : tuple of int
        Expected shape.
    what : str
        How to call the array in messages.

    Returns
    -------
    array : ndarray, C-ordered, writable
    """
    try:
        with archive.open(name) as stream:
            header = _read_header(stream, what)
            if header != (tuple(shape), False, dtype):
                raise Refused(
                    f"{what} holds an array of shape {header[0]} and dtype "
                    f"{header[2]} (fortran_order={header[1]}); the manifest "
                    f"declares shape {tuple(shape)} and dtype {dtype}."
                )
            nbytes = _array_bytes(dtype, shape)
            data = bytearray()
            while len(data) < nbytes:
                chunk = stream.read(min(_CHUNK, nbytes - len(data)))
                if not chunk:
                    raise Refused(f"{what} is truncated.")
                data += chunk
            if stream.read(1):
                raise Refused(f"{what} holds more bytes than its array.")
            return np.frombuffer(data, dtype=dtype).reshape(shape)
    except Refused:
        raise
    except Exception as exc:
        raise Refused(f"{what} is corrupted or not an .npy array ({exc}).") from exc


# -------------------------------------------------------------------- writing
def write_member(archive, name, data):
    """Write one member, deflated, into the open ``archive``."""
    archive.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)


class _ArchiveWriter(zipfile.ZipFile):
    """A zip archive written into a binary file object its caller owns.

    :func:`write_zip` closes it once complete. One that an exception or an
    interrupt cut short is dropped unclosed: its content is the caller's to
    discard, and the file the caller's to close. :mod:`zipfile` would close it as
    it is freed, and that close raises where an interrupt came inside zipfile
    (``ValueError`` with a member's writer marked open, ``AttributeError`` in an
    archive half built), printed as "Exception ignored in ZipFile.__del__" at
    some later moment of the user's program. Freeing one closes nothing.
    """

    def __del__(self):
        pass


def write_zip(file, members):
    """Write ``members`` (``(name, bytes)`` pairs, in order) as a zip archive.

    Parameters
    ----------
    file : binary file object
        Written from its current position, left open.
    members : iterable of (str, bytes)
    """
    archive = _ArchiveWriter(file, "w")
    for name, data in members:
        write_member(archive, name, data)
    archive.close()


def zip_bytes(members):
    """The zip archive of ``members`` (as :func:`write_zip`), as bytes."""
    buffer = io.BytesIO()
    write_zip(buffer, members)
    return buffer.getvalue()
