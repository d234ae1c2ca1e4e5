"""The persistent compilation cache: compiled programs kept on disk, signed.

Compiling a training program with XLA takes about a second; a fresh process
would pay it again for every network depth and bucket of shapes
(:mod:`sk_keras_digits._padding`). A backend that can serialise its compiled
executables (JAX) keeps them here, so a program is compiled once per machine
rather than once per process.

A serialised executable is machine code, and loading one runs it: the cache
trusts nothing it did not write itself.

- **Signed entries.** Each entry is signed with HMAC-SHA256 under a secret key
  of 32 random bytes kept in the cache folder (``key``, readable by its owner
  only). An entry that is damaged, truncated, written by another user or
  copied from another machine fails the signature and is ignored (and
  removed); its program is compiled again.
- **A private folder.** The folder is created readable by its owner only; a
  folder or key owned by someone else, or writable by others, turns the cache
  off for the process (with one warning). A key that is the user's own and
  private but not 32 bytes long (truncated by a crash) is replaced by a new
  one, atomically; the entries signed with the old key then fail their
  signature and are compiled and written again. A new key is on disk
  (``fsync``) before it is linked into place.
- **Keys that name everything.** An entry's name is a SHA-256 of the program's
  description, its argument shapes and dtypes, the versions of the package,
  Keras and the backend, the device and this package's source: a change of any
  of them misses the entry instead of loading a stale one.
- **Bounded.** Entries over :data:`MAX_ENTRY_BYTES` are not kept or read;
  when the folder exceeds its size limit the least recently used entries are
  removed. Writes are atomic (a temporary file renamed into place); the
  temporary file of a writer that died mid-write is removed once it is
  :data:`STALE_TEMPORARY_SECONDS` old.
- **Only regular files are read.** An entry that is a link, a pipe or a
  device is removed unread (a blocking open of a pipe would wait for a
  writer forever); a folder under an entry's name is removed if empty (and
  the entry written), else left alone and not used. Nothing is removed but
  the names this cache gives (:data:`_NAMES`).

The folder is ``$SK_KERAS_DIGITS_COMPILE_CACHE`` when set, else
``$XDG_CACHE_HOME/sk_keras_digits/xla`` (``~/.cache/sk_keras_digits/xla``).
Setting ``SK_KERAS_DIGITS_COMPILE_CACHE`` to ``0``, ``off``, ``false`` or an
empty string turns the cache off; ``SK_KERAS_DIGITS_COMPILE_CACHE_MB`` sets
its size limit in MiB (default :data:`DEFAULT_MAX_MB`). Nothing here touches
the backend's own configuration (JAX's ``jax_compilation_cache_dir`` stays the
user's).

This module is backend-neutral: it stores bytes.
"""

import hashlib
import hmac
import math
import os
import re
import secrets
import stat
import tempfile
import threading
import time
import warnings
from pathlib import Path

from ._fsync import fsync_folder

#: Default size limit of the folder, in MiB.
DEFAULT_MAX_MB = 256
#: Largest entry kept (and read), in bytes.
MAX_ENTRY_BYTES = 64 << 20
#: Age (seconds) after which a writer's temporary file counts as abandoned.
STALE_TEMPORARY_SECONDS = 600

ENV_DIR = "SK_KERAS_DIGITS_COMPILE_CACHE"
ENV_MAX_MB = "SK_KERAS_DIGITS_COMPILE_CACHE_MB"

_MAGIC = b"SKDXLA01"
_KEY_BYTES = 32
_SIGNATURE_BYTES = 32
_SUFFIX = ".xla"
_TEMPORARY = ".tmp"
_TEMPORARY_PREFIX = "sk-keras-digits-"
#: The names this cache writes (an entry: its key's SHA-256; a writer's
#: temporary file): eviction never touches another file of the folder.
_NAMES = {
    _SUFFIX: re.compile(r"[0-9a-f]{64}\.xla"),
    _TEMPORARY: re.compile(rf"{_TEMPORARY_PREFIX}[0-9a-z_]+\.tmp"),
}
#: How an entry is opened: never through a link, never waiting on a pipe.
_READ_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)
_OFF = {"", "0", "off", "false", "no"}


def default_folder():
    """The cache folder by default: under ``$XDG_CACHE_HOME`` or ``~/.cache``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache"
    )
    return Path(base) / "sk_keras_digits" / "xla"


def configured_folder():
    """The folder the environment asks for, or None when the cache is off."""
    value = os.environ.get(ENV_DIR)
    if value is None:
        return default_folder()
    if value.strip().lower() in _OFF:
        return None
    return Path(value).expanduser()


def configured_max_bytes():
    """The size limit the environment asks for (bytes); the default if invalid.

    Invalid: not a number, negative, NaN or infinite (the cache is bounded).
    """
    value = os.environ.get(ENV_MAX_MB)
    try:
        megabytes = float(value) if value is not None else DEFAULT_MAX_MB
    except ValueError:
        megabytes = DEFAULT_MAX_MB
    if not 0 <= megabytes < math.inf:  # NaN, negative or infinite
        megabytes = DEFAULT_MAX_MB
    return int(megabytes * (1 << 20))


class CompileCache:
    """A folder of signed entries: ``get(key)`` and ``put(key, payload)``.

    Parameters
    ----------
    folder : path-like
    max_bytes : int
        Most bytes the entries may take together.
    """

    def __init__(self, folder, max_bytes):
        self.folder = Path(folder)
        self.max_bytes = int(max_bytes)
        self._secret = None
        self._lock = threading.Lock()
        #: Why the cache is off (None while it works).
        self.disabled = None

    # -- the folder and its key -------------------------------------------
    def _open(self):
        """The signing key, creating the folder and key on first use."""
        if self._secret is not None or self.disabled:
            return self._secret
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            _check_private(self.folder, directory=True)
            path = self.folder / "key"
            if not os.path.lexists(path):
                # Written whole to a temporary file, then linked into place:
                # processes starting together (joblib or Dask workers) never
                # read a partly written key, and the first link wins.
                self._write_key(path, replace=False)
            _check_private(path, directory=False)
            secret, identity = _read_key(path)
            if len(secret) != _KEY_BYTES:
                # Ours, private, but damaged (truncated by a crash, emptied):
                # a new key replaces it, unless another process just did.
                # Entries signed with the old key fail their signature, and
                # are compiled and written again.
                if _identity(os.lstat(path)) == identity:
                    self._write_key(path, replace=True)
                _check_private(path, directory=False)
                secret, _ = _read_key(path)
            if len(secret) != _KEY_BYTES:
                raise OSError(f"{path} does not hold a {_KEY_BYTES}-byte key")
        except OSError as e:
            self.disabled = str(e)
            warnings.warn(
                f"The compilation cache in {self.folder} is off for this "
                f"process: {e}. Set {ENV_DIR} to a private folder, or to 'off'.",
                UserWarning,
                stacklevel=3,
            )
            return None
        self._secret = secret
        return secret

    def _write_key(self, path, replace):
        """A new random key at ``path``, on disk before it is in place.

        ``replace``: over a damaged key (``os.replace``), else only where none
        is (``os.link``: the first process wins).
        """
        fd, temporary = tempfile.mkstemp(
            dir=self.folder, prefix=_TEMPORARY_PREFIX, suffix=_TEMPORARY
        )
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(_KEY_BYTES))
                f.flush()
                os.fsync(f.fileno())  # never a key linked before its bytes
            if replace:
                os.replace(temporary, path)
            else:
                try:
                    os.link(temporary, path)
                except FileExistsError:
                    pass
        finally:
            self._discard(Path(temporary))
        fsync_folder(self.folder)

    def _path(self, key):
        return self.folder / (hashlib.sha256(key).hexdigest() + _SUFFIX)

    def _sign(self, secret, key, payload):
        return hmac.new(secret, key + b"\0" + payload, hashlib.sha256).digest()

    # -- entries ------------------------------------------------------------
    def get(self, key):
        """The payload stored under ``key`` (bytes), or None.

        None when absent, too large, damaged or not signed with this cache's
        key; such an entry is removed.
        """
        secret = self._open()
        if secret is None:
            return None
        path = self._path(key)
        try:
            if not stat.S_ISREG(os.lstat(path).st_mode):
                raise ValueError("not a regular file")  # never opened
            fd = os.open(path, _READ_FLAGS)
        except FileNotFoundError:
            return None
        except (OSError, ValueError):  # a link, a pipe, a folder; unreadable
            self._discard(path)
            return None
        try:
            with os.fdopen(fd, "rb") as f:
                st = os.fstat(f.fileno())
                if not stat.S_ISREG(st.st_mode):
                    raise ValueError("not a regular file")
                if st.st_size > MAX_ENTRY_BYTES + 64:
                    raise ValueError("too large")
                data = f.read(MAX_ENTRY_BYTES + 64)
        except (OSError, ValueError):
            self._discard(path)
            return None
        head = len(_MAGIC) + _SIGNATURE_BYTES
        signature, payload = data[len(_MAGIC) : head], data[head:]
        if data[: len(_MAGIC)] != _MAGIC or not hmac.compare_digest(
            signature, self._sign(secret, key, payload)
        ):
            self._discard(path)
            return None
        try:
            os.utime(path)  # recently used
        except OSError:
            pass
        return payload

    def put(self, key, payload):
        """Store ``payload`` under ``key`` (atomically); evict to the limit.

        Returns
        -------
        stored : bool
        """
        secret = self._open()
        if secret is None or len(payload) > MAX_ENTRY_BYTES:
            return False
        if len(payload) + len(_MAGIC) + _SIGNATURE_BYTES > self.max_bytes:
            return False
        data = _MAGIC + self._sign(secret, key, payload) + payload
        try:
            fd, temporary = tempfile.mkstemp(
                dir=self.folder, prefix=_TEMPORARY_PREFIX, suffix=_TEMPORARY
            )
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                try:
                    os.replace(temporary, self._path(key))
                except IsADirectoryError:
                    # An empty folder named as the entry is removed; one
                    # holding anything is left alone, and not used.
                    self._discard(self._path(key))
                    os.replace(temporary, self._path(key))
            except BaseException:
                self._discard(Path(temporary))
                raise
        except OSError:
            return False
        self.evict()
        return True

    def entries(self):
        """The entries' ``(mtime, size, path)``, least recently used first."""
        return self._scan()[_SUFFIX]

    def _scan(self):
        """The folder's entries and temporary files, each oldest first.

        Returns ``{suffix: [(mtime, size, path), ...]}`` for :data:`_SUFFIX`
        and :data:`_TEMPORARY`, from one listing of the folder: only files
        named as this cache names them (:data:`_NAMES`), so that a folder
        shared with other files loses none of them.
        """
        found = {kind: [] for kind in (_SUFFIX, _TEMPORARY)}
        try:
            with os.scandir(self.folder) as it:
                for entry in it:
                    kind = next(
                        (k for k in found if _NAMES[k].fullmatch(entry.name)), None
                    )
                    if kind is not None and entry.is_file(follow_symlinks=False):
                        st = entry.stat(follow_symlinks=False)
                        found[kind].append((st.st_mtime, st.st_size, Path(entry.path)))
        except OSError:
            return {kind: [] for kind in found}
        for files in found.values():
            files.sort(key=lambda item: item[0])
        return found

    def size(self):
        """Bytes the entries take."""
        return sum(size for _, size, _ in self.entries())

    def evict(self):
        """Remove the least recently used entries beyond the size limit.

        Also removes the temporary files of writers that died mid-write (at
        least :data:`STALE_TEMPORARY_SECONDS` old: a live writer's file is
        renamed within moments).
        """
        with self._lock:
            found = self._scan()
            stale = time.time() - STALE_TEMPORARY_SECONDS
            for mtime, _, path in found[_TEMPORARY]:
                if mtime < stale:
                    self._discard(path)
            entries = found[_SUFFIX]
            total = sum(size for _, size, _ in entries)
            for _, size, path in entries:
                if total <= self.max_bytes:
                    break
                self._discard(path)
                total -= size

    @staticmethod
    def _discard(path):
        """Remove a file this cache names (an entry, a temporary file); a
        folder under such a name only if it is empty."""
        try:
            if stat.S_ISDIR(os.lstat(path).st_mode):
                os.rmdir(path)  # fails unless empty
            else:
                os.unlink(path)
        except OSError:
            pass


def _read_key(path):
    """The key file's first bytes (one more than a key: a longer file shows)
    and its identity; never through a link, never waiting on a pipe."""
    fd = os.open(path, _READ_FLAGS)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise OSError(f"{path} is not a regular file")
        return f.read(_KEY_BYTES + 1), _identity(st)


def _identity(st):
    """A file's identity, to tell whether another process replaced it."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _check_private(path, directory):
    """Refuse a cache folder or key that another user could have written."""
    st = os.lstat(path)
    kind = stat.S_ISDIR(st.st_mode) if directory else stat.S_ISREG(st.st_mode)
    if not kind:
        what = "a folder" if directory else "a regular file"
        if stat.S_ISLNK(st.st_mode):  # whoever may change the link owns the cache
            raise OSError(f"{path} is a symbolic link; {what} itself is expected")
        raise OSError(f"{path} is not {what}")
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise OSError(f"{path} belongs to another user")
    if st.st_mode & (0o022 if directory else 0o077):
        raise OSError(f"{path} is accessible to other users")


_CACHES = {}
_CACHES_LOCK = threading.Lock()


def active():
    """The process's cache for the configured folder and limit, or None if off."""
    folder = configured_folder()
    if folder is None:
        return None
    key = (str(folder), configured_max_bytes())
    with _CACHES_LOCK:
        cache = _CACHES.get(key)
        if cache is None:
            cache = _CACHES[key] = CompileCache(*key)
    return None if cache.disabled else cache
