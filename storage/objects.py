"""Content-addressed object stores: a directory on disk (`file://`) or any S3 server (`s3://`).

An object's key is the lowercase hex SHA-256 of its bytes, so a key names one content forever:
writing the same bytes twice stores them once, and a stored object is never changed in place.
Objects are sharded by the first two byte pairs of the key, `ab/cd/abcdef…`, under the root
directory or the bucket (and optional prefix).

Both backends are driven through the same async interface, `ObjectStore`. Every blocking call
(file I/O, hashing large buffers, the synchronous `minio` client) runs in a worker thread, never
on the event loop. S3 calls run on a bounded pool of their own, each within a bounded time, so
a stalled S3 server neither starves the process's other threads nor holds a caller for long.

Errors: a malformed key raises `ValueError` before any I/O; a missing object raises
`storage.errors.ObjectNotFound`; a stored object that does not match what was written raises
`storage.errors.IntegrityError`; an S3 server that is away (refused, cut, timed out, busy)
raises `storage.errors.Unavailable` (try again); any other failure of the backing store (disk,
S3 error) raises `storage.errors.StorageError`.
"""

from __future__ import annotations

import abc
import asyncio
import functools
import hashlib
import io
import os
import re
import tempfile
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Final, Self, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

import certifi
import urllib3
from minio import Minio
from minio.error import MinioException, S3Error

from storage.errors import Conflict, IntegrityError, ObjectNotFound, StorageError, Unavailable

__all__ = [
    "FileObjectStore",
    "ObjectStore",
    "S3ObjectStore",
    "object_path",
    "open_object_store",
    "sha256_hex",
    "validate_key",
]

_KEY_RE: Final = re.compile(r"[0-9a-f]{64}")
_CHUNK_BYTES: Final = 1024 * 1024
# Hashing a few hundred KiB takes well under a millisecond; above that, use a thread.
_INLINE_HASH_BYTES: Final = 256 * 1024
_BUCKET_RE: Final = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_S3_NOT_FOUND: Final = frozenset({"NoSuchKey", "NoSuchObject", "NotFound", "ResourceNotFound"})
_S3_BUCKET_TAKEN: Final = frozenset({"BucketAlreadyOwnedByYou", "BucketAlreadyExists"})
#: S3 error codes that mean "not now".
_S3_BUSY: Final = frozenset(
    {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "ServerBusy"}
)
#: Threads of one S3 store: calls beyond these wait their turn (within their own deadline).
S3_THREADS: Final = 16
#: How long one S3 call may take, plus the time its bytes take at ``S3_SLOWEST_BYTES_S``.
S3_CALL_TIMEOUT_S: Final = 8.0
S3_SLOWEST_BYTES_S: Final = 4 * 1024 * 1024
_T = TypeVar("_T")
_TRUE: Final = frozenset({"true", "1", "yes", "on"})
_FALSE: Final = frozenset({"false", "0", "no", "off"})


def validate_key(key: str) -> str:
    """Return `key` if it is a well-formed object key.

    Parameters
    ----------
    key
        A lowercase hex SHA-256 digest, 64 characters.

    Returns
    -------
    str
        The same key.

    Raises
    ------
    ValueError
        The key is not 64 lowercase hex characters (this also rules out path traversal).
    """
    if not isinstance(key, str) or _KEY_RE.fullmatch(key) is None:
        raise ValueError(
            "object key must be 64 lowercase hex characters (a SHA-256 digest), "
            f"got {str(key)[:80]!r}"
        )
    return key


#: Where notes live, beside the shards of objects (never a two-character folder).
_NOTES: Final = "notes"
_NOTE_NAME_RE: Final = re.compile(r"[a-z0-9][a-z0-9.-]{0,99}(/[a-z0-9][a-z0-9.-]{0,99}){0,3}")


def validate_note_name(name: str) -> str:
    """Return ``name`` if it is a well-formed note name (no traversal), else raise ValueError."""
    if _NOTE_NAME_RE.fullmatch(name) is None or ".." in name:
        raise ValueError(
            f"a note name is folder/name in lowercase letters and digits, got {name!r}"
        )
    return name


def object_path(key: str) -> str:
    """The sharded relative path of an object, `ab/cd/abcd…`; raises ValueError on a bad key."""
    validate_key(key)
    return f"{key[0:2]}/{key[2:4]}/{key}"


class ObjectStore(abc.ABC):
    """A content-addressed store of immutable byte objects.

    Use it as an async context manager, or call `start()` before and `close()` after use.
    """

    async def start(self) -> None:  # noqa: B027 (a hook: most backends need no preparation)
        """Prepare the backing store (create the root directory or bucket); idempotent.

        Operations call it themselves on first use, so calling it is optional; doing it at
        start-up makes a misconfigured store fail early.

        Raises
        ------
        StorageError
            The backing store cannot be reached or prepared.
        """

    @abc.abstractmethod
    async def put(self, data: bytes, *, key: str | None = None) -> str:
        """Store `data` durably and return its key.

        Parameters
        ----------
        data
            The object's bytes.
        key
            Their key when the caller has hashed them (a received instance's
            ``storage.instance_keys.instance_key``); by default their SHA-256.

        Returns
        -------
        str
            ``key``, or the lowercase hex SHA-256 of `data`. Storing bytes already present
            is a no-op that returns the same key.

        Raises
        ------
        IntegrityError
            The backend stored something other than what was sent.
        StorageError
            The write failed; nothing partial is visible under the key.
        """

    @abc.abstractmethod
    async def put_file(self, path: Path) -> str:
        """Store the contents of the file at `path` durably, streamed, and return its key.

        The file is read in chunks and never held whole in memory.

        Parameters
        ----------
        path
            A regular file, which must not change while it is being stored.

        Returns
        -------
        str
            The lowercase hex SHA-256 of the file's contents.

        Raises
        ------
        OSError
            `path` cannot be opened or read.
        IntegrityError
            The file changed while it was being stored (nothing is stored under the key).
        StorageError
            The write failed.
        """

    @abc.abstractmethod
    async def get(self, key: str) -> bytes:
        """Return the bytes stored under `key`.

        Raises
        ------
        ValueError
            `key` is malformed.
        ObjectNotFound
            Nothing is stored under `key`.
        StorageError
            The read failed.
        """

    @abc.abstractmethod
    async def exists(self, key: str) -> bool:
        """Whether an object is stored under `key`.

        Raises
        ------
        ValueError
            `key` is malformed.
        StorageError
            The store could not be asked.
        """

    @abc.abstractmethod
    async def size(self, key: str) -> int:
        """The size of the object stored under `key`, in bytes.

        Raises
        ------
        ValueError
            `key` is malformed.
        ObjectNotFound
            Nothing is stored under `key`.
        StorageError
            The store could not be asked.
        """

    @abc.abstractmethod
    async def delete(self, key: str) -> None:
        """Remove the object stored under `key`; removing a missing object is not an error.

        Raises
        ------
        ValueError
            `key` is malformed.
        StorageError
            The removal failed.
        """

    @abc.abstractmethod
    def keys_older_than(self, cutoff: datetime) -> AsyncIterator[str]:
        """Every stored object's key whose object was written before ``cutoff``."""

    @abc.abstractmethod
    async def put_note(self, name: str, data: bytes) -> None:
        """Store a small named record beside the objects, once (the audit chain's anchors).

        Notes live apart from the content-addressed objects (the collector never sees them)
        and are written once: writing the same bytes again is a no-op.

        Parameters
        ----------
        name
            ``folder/name``: lowercase letters, digits, dots and hyphens in each part.

        Raises
        ------
        ValueError
            The name is malformed.
        Conflict
            Another note is stored under this name.
        StorageError
            The write failed.
        """

    @abc.abstractmethod
    async def get_note(self, name: str) -> bytes:
        """The bytes of the note ``name``.

        Raises
        ------
        ObjectNotFound
            No such note.
        StorageError
            The read failed.
        """

    @abc.abstractmethod
    async def note_names(self, folder: str) -> list[str]:
        """The names of the notes in ``folder``, sorted."""

    async def close(self) -> None:  # noqa: B027 (a hook: most backends hold nothing)
        """Release connections and other resources; the store is not used afterwards."""

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class FileObjectStore(ObjectStore):
    """Objects as files under a root directory: `ROOT/ab/cd/<key>`.

    Each object is written to a temporary file beside its final name (`.<key>.<random>.tmp`,
    mode 0600), flushed and fsynced, renamed into place and the directory fsynced, so the
    name either does not exist or holds the complete object, even across a crash. A crash
    can leave a temporary file behind; it is never read and may be removed at any time.
    An existing object is never opened for writing; one whose size is wrong (a damaged
    disk) is replaced, by the same rename, on the next write of its content.

    Parameters
    ----------
    root
        The directory holding the objects; created on first use if missing.
    """

    def __init__(self, root: Path) -> None:
        self._root = Path(root)
        #: Shard directories whose entries (``ab`` in the root, ``cd`` in ``ab``) are known
        #: to be on disk: an object written into one needs only its own directory's fsync.
        self._durable_dirs: set[Path] = set()

    def __repr__(self) -> str:
        return f"FileObjectStore({str(self._root)!r})"

    @property
    def root(self) -> Path:
        """The directory holding the objects."""
        return self._root

    def path_of(self, key: str) -> Path:
        """Where the object `key` lives (or would live); raises ValueError on a bad key."""
        return self._root / object_path(key)

    async def start(self) -> None:
        try:
            await asyncio.to_thread(self._root.mkdir, parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create object store directory {self._root}: {exc}") from exc
        if not await asyncio.to_thread(os.access, self._root, os.W_OK | os.X_OK):
            raise StorageError(f"object store directory {self._root} is not writable")

    async def put(self, data: bytes, *, key: str | None = None) -> str:
        key = key or await sha256_hex(data)
        try:
            await asyncio.to_thread(self._put_bytes, key, data)
        except OSError as exc:
            raise StorageError(f"cannot store object {key} in {self._root}: {exc}") from exc
        return key

    async def put_file(self, path: Path) -> str:
        # Hash first, so that re-sending a file already stored writes nothing; the copy
        # re-hashes what it writes, so a file changed in between is caught, not misfiled.
        key, size = await asyncio.to_thread(_hash_file, Path(path))
        try:
            await asyncio.to_thread(self._put_file, key, size, Path(path))
        except OSError as exc:
            raise StorageError(f"cannot store {path} in {self._root}: {exc}") from exc
        return key

    @property
    def spool_dir(self) -> Path:
        """A directory beside the objects for files being received (same file system, so an
        `adopt_file` is a rename); its files are never objects and may be removed when stale."""
        return self._root / ".spool"

    async def adopt_file(self, path: Path, key: str) -> str:
        """Make a file written in `spool_dir` the object `key`, by fsync and rename: no copy.

        The caller has hashed the file (`key` is its SHA-256, or a received instance's
        `storage.instance_keys.instance_key`) and does not change it any more.
        The file is gone afterwards: renamed into place, or removed when the object exists.

        Raises
        ------
        ValueError
            `key` is malformed.
        StorageError
            The file could not be made durable or renamed.
        """
        target = self.path_of(key)
        try:
            await asyncio.to_thread(self._adopt, Path(path), target)
        except OSError as exc:
            raise StorageError(
                f"cannot store {path} as object {key} in {self._root}: {exc}"
            ) from exc
        return key

    def _adopt(self, source: Path, target: Path) -> None:
        if _file_size(target) == source.stat().st_size:
            source.unlink()
            return
        with source.open("rb") as src:
            os.fsync(src.fileno())
        new_dirs = self._make_dirs(target.parent)
        os.replace(source, target)
        self._sync_dirs(target.parent, new_dirs)

    async def get(self, key: str) -> bytes:
        target = self.path_of(key)
        try:
            return await asyncio.to_thread(target.read_bytes)
        except FileNotFoundError:
            raise ObjectNotFound(f"no object {key} in {self._root}") from None
        except OSError as exc:
            raise StorageError(f"cannot read object {key} in {self._root}: {exc}") from exc

    async def exists(self, key: str) -> bool:
        target = self.path_of(key)
        try:
            return await asyncio.to_thread(target.is_file)
        except OSError as exc:
            raise StorageError(f"cannot look up object {key} in {self._root}: {exc}") from exc

    async def size(self, key: str) -> int:
        target = self.path_of(key)
        try:
            stat = await asyncio.to_thread(target.stat)
        except FileNotFoundError:
            raise ObjectNotFound(f"no object {key} in {self._root}") from None
        except OSError as exc:
            raise StorageError(f"cannot look up object {key} in {self._root}: {exc}") from exc
        return stat.st_size

    async def delete(self, key: str) -> None:
        target = self.path_of(key)
        try:
            await asyncio.to_thread(self._delete, target)
        except OSError as exc:
            raise StorageError(f"cannot delete object {key} in {self._root}: {exc}") from exc

    # Blocking parts, run in worker threads.

    async def keys_older_than(self, cutoff: datetime) -> AsyncIterator[str]:
        for shard in await asyncio.to_thread(_shards, self._root):
            for key in await asyncio.to_thread(_old_files, shard, cutoff.timestamp()):
                yield key

    async def put_note(self, name: str, data: bytes) -> None:
        target = self._root / _NOTES / validate_note_name(name)
        try:
            await asyncio.to_thread(self._put_note, target, data)
        except OSError as exc:
            raise StorageError(f"cannot store note {name} in {self._root}: {exc}") from exc

    async def get_note(self, name: str) -> bytes:
        target = self._root / _NOTES / validate_note_name(name)
        try:
            return await asyncio.to_thread(target.read_bytes)
        except FileNotFoundError:
            raise ObjectNotFound(f"no note {name} in {self._root}") from None
        except OSError as exc:
            raise StorageError(f"cannot read note {name} in {self._root}: {exc}") from exc

    async def note_names(self, folder: str) -> list[str]:
        where = self._root / _NOTES / validate_note_name(folder)

        def names() -> list[str]:
            if not where.is_dir():
                return []
            return sorted(f"{folder}/{e.name}" for e in where.iterdir() if e.is_file())

        try:
            return await asyncio.to_thread(names)
        except OSError as exc:
            raise StorageError(f"cannot list notes {folder} in {self._root}: {exc}") from exc

    def _put_note(self, target: Path, data: bytes) -> None:
        if target.is_file():
            if target.read_bytes() != data:
                raise Conflict(f"another note is stored as {target.name}")
            return
        target.parent.mkdir(parents=True, exist_ok=True)

        def write(out: BinaryIO) -> None:
            out.write(data)

        self._write_atomically(target, write)

    def _put_bytes(self, key: str, data: bytes) -> None:
        target = self.path_of(key)
        if _file_size(target) == len(data):
            return

        def write(out: BinaryIO) -> None:
            out.write(data)

        self._write_atomically(target, write)

    def _put_file(self, key: str, size: int, source: Path) -> None:
        target = self.path_of(key)
        if _file_size(target) == size:
            return

        def copy(out: BinaryIO) -> None:
            digest = hashlib.sha256()
            with source.open("rb") as src:
                while chunk := src.read(_CHUNK_BYTES):
                    digest.update(chunk)
                    out.write(chunk)
            if digest.hexdigest() != key:
                raise IntegrityError(f"{source} changed while it was being stored")

        self._write_atomically(target, copy)

    def _write_atomically(self, target: Path, write: Callable[[BinaryIO], None]) -> None:
        new_dirs = self._make_dirs(target.parent)
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                write(out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self._sync_dirs(target.parent, new_dirs)

    def _make_dirs(self, shard_dir: Path) -> tuple[Path, ...]:
        """Create `ab/cd` below the root (when missing). The directories whose entries are
        not yet known to be on disk: the caller makes them durable with `_sync_dirs`, after
        its object's own fsync (which, on a journaling file system, carries them already:
        their fsync then waits for nothing)."""
        if shard_dir in self._durable_dirs:
            return ()
        self._root.mkdir(parents=True, exist_ok=True)
        shard_dir.mkdir(parents=True, exist_ok=True)
        # The entry of ``cd`` is in ``ab``, that of ``ab`` in the root. A directory made by
        # another thread, or before this process, is made durable here too: its maker may
        # not have synced it yet.
        return (shard_dir.parent, self._root)

    def _sync_dirs(self, shard_dir: Path, new_dirs: tuple[Path, ...]) -> None:
        """Make an object's directory entry durable, and those of its shard directories."""
        _fsync_dir(shard_dir)
        for directory in new_dirs:
            _fsync_dir(directory)
        if new_dirs:
            self._durable_dirs.add(shard_dir)

    @staticmethod
    def _delete(target: Path) -> None:
        try:
            target.unlink()
        except FileNotFoundError:
            return
        _fsync_dir(target.parent)


class S3ObjectStore(ObjectStore):
    """Objects in an S3 bucket, named `[prefix/]ab/cd/<key>`, through the `minio` client.

    The bucket is created if it does not exist, by `start()` or else by the first operation
    (once per store). A write is a PUT followed by a HEAD that checks the stored size.

    Parameters
    ----------
    endpoint
        `host:port` of the S3 server.
    access_key, secret_key
        Credentials; the secret never appears in `repr()` or error messages.
    bucket
        Bucket name (3–63 lowercase letters, digits, dots and hyphens).
    prefix
        Key prefix inside the bucket, without leading or trailing slashes; empty for none.
    secure
        Use HTTPS.
    region
        Bucket region; None lets the client ask the server.
    connect_timeout_s, read_timeout_s
        Socket timeouts of each HTTP request, in seconds.
    """

    def __init__(
        self,
        *,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        prefix: str = "",
        secure: bool = True,
        region: str | None = None,
        connect_timeout_s: float = 3.0,
        read_timeout_s: float = 10.0,
    ) -> None:
        if _BUCKET_RE.fullmatch(bucket) is None:
            raise ValueError(
                "S3 bucket name must be 3-63 lowercase letters, digits, dots and hyphens, "
                f"starting and ending with a letter or digit, got {bucket!r}"
            )
        self._endpoint = endpoint
        self._bucket = bucket
        self._prefix = prefix.strip("/")
        self._secure = secure
        self._region = region
        # Our own pool, so that close() can release its connections.
        self._http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=connect_timeout_s, read=read_timeout_s),
            maxsize=10,
            cert_reqs="CERT_REQUIRED",
            ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
            # Few quick retries: a longer outage is the caller's to answer (503, A700).
            retries=urllib3.Retry(
                total=2, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]
            ),
        )
        self._threads = ThreadPoolExecutor(S3_THREADS, thread_name_prefix="s3")
        self._client = Minio(
            endpoint,
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            region=region,
            http_client=self._http,
        )
        self._bucket_ready = False
        self._bucket_lock = asyncio.Lock()

    def __repr__(self) -> str:
        scheme = "https" if self._secure else "http"
        where = f"{self._bucket}/{self._prefix}" if self._prefix else self._bucket
        return f"S3ObjectStore({scheme}://{self._endpoint}/{where})"

    @property
    def endpoint(self) -> str:
        """`host:port` of the S3 server."""
        return self._endpoint

    @property
    def bucket(self) -> str:
        """The bucket holding the objects."""
        return self._bucket

    @property
    def prefix(self) -> str:
        """The key prefix inside the bucket, without slashes at either end; may be empty."""
        return self._prefix

    @property
    def secure(self) -> bool:
        """Whether requests use HTTPS."""
        return self._secure

    @property
    def region(self) -> str | None:
        """The configured bucket region, None when the server is asked."""
        return self._region

    def object_name(self, key: str) -> str:
        """The S3 object name of `key`; raises ValueError on a bad key."""
        name = object_path(key)
        return f"{self._prefix}/{name}" if self._prefix else name

    async def start(self) -> None:
        if self._bucket_ready:
            return
        async with self._bucket_lock:
            if self._bucket_ready:
                return
            await self._call(f"prepare bucket {self._bucket}", self._ensure_bucket)
            self._bucket_ready = True

    async def put(self, data: bytes, *, key: str | None = None) -> str:
        key = key or await sha256_hex(data)
        name = self.object_name(key)
        await self.start()
        if await self._stored_size(name) == len(data):
            return key
        await self._call(
            f"store object {key}",
            self._client.put_object,
            self._bucket,
            name,
            io.BytesIO(data),
            len(data),
            size=len(data),
        )
        await self._verify_size(key, name, len(data))
        return key

    async def put_file(self, path: Path) -> str:
        path = Path(path)
        key, size = await asyncio.to_thread(_hash_file, path)
        name = self.object_name(key)
        await self.start()
        if await self._stored_size(name) == size:
            return key
        before = await asyncio.to_thread(_file_identity, path)
        await self._call(
            f"store {path} as object {key}",
            self._client.fput_object,
            self._bucket,
            name,
            str(path),
            size=size,
        )
        if await asyncio.to_thread(_file_identity, path) != before:
            await self._call(f"remove object {key}", self._client.remove_object, self._bucket, name)
            raise IntegrityError(f"{path} changed while it was being stored")
        await self._verify_size(key, name, size)
        return key

    async def get(self, key: str) -> bytes:
        name = self.object_name(key)
        await self.start()
        return await self._read(f"read object {key}", name, key)

    async def exists(self, key: str) -> bool:
        name = self.object_name(key)
        await self.start()
        return await self._stored_size(name) is not None

    async def size(self, key: str) -> int:
        name = self.object_name(key)
        await self.start()
        size = await self._stored_size(name)
        if size is None:
            raise ObjectNotFound(f"no object {key} in bucket {self._bucket}")
        return size

    async def delete(self, key: str) -> None:
        name = self.object_name(key)
        await self.start()
        # S3 DELETE succeeds for a missing object, which is the idempotence we promise.
        await self._call(f"delete object {key}", self._client.remove_object, self._bucket, name)

    async def put_note(self, name: str, data: bytes) -> None:
        object_name = self._note_name(name)
        await self.start()
        try:
            stored = await self._read(f"read note {name}", object_name, name)
        except ObjectNotFound:
            stored = None
        if stored is not None:
            if stored != data:
                raise Conflict(f"another note is stored as {name}")
            return
        await self._call(
            f"store note {name}",
            self._client.put_object,
            self._bucket,
            object_name,
            io.BytesIO(data),
            len(data),
            size=len(data),
        )
        await self._verify_size(name, object_name, len(data))

    async def get_note(self, name: str) -> bytes:
        await self.start()
        return await self._read(f"read note {name}", self._note_name(name), name)

    async def note_names(self, folder: str) -> list[str]:
        start = self._note_name(folder) + "/"
        await self.start()

        def names() -> list[str]:
            listing = self._client.list_objects(self._bucket, prefix=start, recursive=True)
            skip = len(self._note_name(""))
            return sorted((item.object_name or "")[skip:] for item in listing)

        return await self._call(f"list notes {folder}", names)

    def _note_name(self, name: str) -> str:
        inner = f"{_NOTES}/{validate_note_name(name)}" if name else f"{_NOTES}/"
        return f"{self._prefix}/{inner}" if self._prefix else inner

    async def _read(self, what: str, object_name: str, key: str) -> bytes:
        # One GET in two steps, each within its deadline: the answer's head, then its bytes
        # within the time their length allows.
        response = await self._call(
            what, self._client.get_object, self._bucket, object_name, key=key
        )
        try:
            size = int(response.headers.get("Content-Length") or 0)
            return await self._call(what, response.read, size=size)
        finally:
            response.close()
            response.release_conn()

    async def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)
        self._http.clear()

    # Helpers.

    async def _call(
        self,
        what: str,
        func: Callable[..., _T],
        *args: object,
        key: str | None = None,
        size: int = 0,
    ) -> _T:
        """Run a blocking client call on the store's threads within its deadline, translating
        its errors to ours."""
        deadline = S3_CALL_TIMEOUT_S + size / S3_SLOWEST_BYTES_S
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(deadline):
                return await loop.run_in_executor(self._threads, functools.partial(func, *args))
        except TimeoutError:
            raise Unavailable(f"S3 did not {what} within {deadline:.0f} s at {self!r}") from None
        except S3Error as exc:
            if key is not None and exc.code in _S3_NOT_FOUND:
                raise ObjectNotFound(f"no object {key} in bucket {self._bucket}") from None
            kind = Unavailable if exc.code in _S3_BUSY else StorageError
            raise kind(f"S3 could not {what} at {self!r}: {exc.code}: {exc.message}") from exc
        except (MinioException, urllib3.exceptions.HTTPError, ConnectionError) as exc:
            raise Unavailable(f"S3 could not {what} at {self!r}: {exc}") from exc
        except OSError as exc:
            raise StorageError(f"S3 could not {what} at {self!r}: {exc}") from exc

    async def _stored_size(self, name: str) -> int | None:
        """Size of the object `name` in bytes, None if it does not exist."""
        try:
            stat = await self._call(
                f"look up {name}", self._client.stat_object, self._bucket, name, key=name
            )
        except ObjectNotFound:
            return None
        return stat.size

    async def _verify_size(self, key: str, name: str, size: int) -> None:
        stored = await self._stored_size(name)
        if stored != size:
            raise IntegrityError(
                f"object {key} in bucket {self._bucket} has {stored} bytes after writing {size}"
            )

    def _ensure_bucket(self) -> None:
        if self._client.bucket_exists(self._bucket):
            return
        try:
            self._client.make_bucket(self._bucket, location=self._region)
        except S3Error as exc:
            if exc.code not in _S3_BUCKET_TAKEN:  # another process made it first
                raise

    async def keys_older_than(self, cutoff: datetime) -> AsyncIterator[str]:
        after = ""
        while True:
            page = await self._call("list objects", self._list_page, after, cutoff)
            for key in page.keys:
                yield key
            if page.last is None:
                return
            after = page.last

    def _list_page(self, after: str, cutoff: datetime) -> _Page:
        prefix = f"{self._prefix}/" if self._prefix else ""
        keys, last = [], None
        listing = self._client.list_objects(
            self._bucket, prefix=prefix or None, recursive=True, start_after=after or None
        )
        for seen, item in enumerate(listing, 1):
            last = item.object_name
            key = (item.object_name or "").rsplit("/", 1)[-1]
            if _KEY_RE.fullmatch(key) and item.last_modified and item.last_modified < cutoff:
                keys.append(key)
            if seen >= _LIST_PAGE:
                return _Page(keys=keys, last=last)
        return _Page(keys=keys, last=None)


_LIST_PAGE: Final = 1000


@dataclass(frozen=True)
class _Page:
    keys: list[str]
    #: Where the next page starts after, None after the last.
    last: str | None


def _shards(root: Path) -> list[Path]:
    """The second-level shard folders of a file store (``ab/cd``)."""
    if not root.is_dir():
        return []
    return sorted(
        inner
        for outer in root.iterdir()
        if outer.is_dir() and len(outer.name) == 2
        for inner in outer.iterdir()
        if inner.is_dir() and len(inner.name) == 2
    )


def _old_files(shard: Path, cutoff: float) -> list[str]:
    found = []
    for entry in os.scandir(shard):
        if _KEY_RE.fullmatch(entry.name) and entry.is_file() and entry.stat().st_mtime < cutoff:
            found.append(entry.name)
    return found


def open_object_store(url: str) -> ObjectStore:
    """Open the object store named by a storage URL.

    Parameters
    ----------
    url
        ``file:///absolute/path`` for a directory, or
        ``s3://ACCESS:SECRET@host:port/bucket[/prefix][?secure=false&region=NAME]`` for S3
        (credentials percent-encoded; ``secure`` defaults to true, HTTPS).

    Returns
    -------
    ObjectStore
        A `FileObjectStore` or an `S3ObjectStore`, not yet started (see `ObjectStore.start`).

    Raises
    ------
    ValueError
        The URL is malformed; the message says which part and never repeats the credentials.
    """
    scheme, sep, _ = url.partition("://")
    if not sep:
        raise ValueError("storage URL must start with file:// or s3://")
    scheme = scheme.lower()
    if scheme == "file":
        return _open_file_url(url)
    if scheme == "s3":
        return _open_s3_url(url)
    # The scheme is not repeated: in a mangled URL it could be a piece of the secret.
    raise ValueError("storage URL scheme is not supported; use file:// or s3://")


def _open_file_url(url: str) -> FileObjectStore:
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise ValueError(
            "file storage URL must have an empty host and an absolute path, "
            "like file:///var/lib/telemed/objects (three slashes)"
        )
    if parts.query or parts.fragment:
        raise ValueError("file storage URL takes no query or fragment")
    path = unquote(parts.path)
    if not path.startswith("/") or path == "/":
        raise ValueError("file storage URL needs an absolute directory path other than /")
    if any(segment in (".", "..") for segment in path.split("/")):
        raise ValueError("file storage URL path must not contain . or .. segments")
    return FileObjectStore(Path(path))


def _open_s3_url(url: str) -> S3ObjectStore:
    # Parsed by hand, without urlsplit().port and friends: their errors quote the offending
    # text, which in a mistyped URL can be part of the secret.
    rest = url.split("://", 1)[1]
    if "#" in rest:
        raise ValueError("s3 storage URL takes no fragment (#); percent-encode # in the secret")
    authority_and_path, _, query = rest.partition("?")
    authority, slash, path = authority_and_path.partition("/")
    userinfo, at, hostport = authority.rpartition("@")
    if not at:
        raise ValueError("s3 storage URL needs credentials: s3://ACCESS:SECRET@host:port/bucket")
    access, colon, secret = userinfo.partition(":")
    if not colon or not access or not secret:
        raise ValueError(
            "s3 storage URL credentials must be ACCESS:SECRET (percent-encode : / @ ? # in them)"
        )
    host, port = _split_hostport(hostport)
    if not slash or not path.strip("/"):
        raise ValueError("s3 storage URL needs a bucket after the host: s3://…@host:port/bucket")
    bucket, _, prefix = path.partition("/")
    bucket = unquote(bucket)
    if _BUCKET_RE.fullmatch(bucket) is None:
        raise ValueError(
            "s3 storage URL bucket name must be 3-63 lowercase letters, digits, dots and "
            "hyphens, starting and ending with a letter or digit"
        )
    prefix = unquote(prefix).strip("/")
    if prefix and any(seg in ("", ".", "..") for seg in prefix.split("/")):
        raise ValueError("s3 storage URL prefix must not contain empty, . or .. segments")
    secure, region = _parse_s3_query(query)
    return S3ObjectStore(
        endpoint=f"{host}:{port}",
        access_key=unquote(access),
        secret_key=unquote(secret),
        bucket=bucket,
        prefix=prefix,
        secure=secure,
        region=region,
    )


def _split_hostport(hostport: str) -> tuple[str, int]:
    if hostport.startswith("["):
        end = hostport.find("]")
        host, after = hostport[: end + 1], hostport[end + 1 :]
        if end < 0 or not after.startswith(":"):
            raise ValueError("s3 storage URL needs host:port, e.g. [::1]:9000 for IPv6")
        port_text = after[1:]
    else:
        host, colon, port_text = hostport.rpartition(":")
        if not colon:
            raise ValueError("s3 storage URL needs an explicit port: s3://…@host:port/bucket")
        if not re.fullmatch(r"[A-Za-z0-9.-]+", host):
            raise ValueError("s3 storage URL host must be a DNS name or an IP address")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError("s3 storage URL port must be a number from 1 to 65535")
    return host, int(port_text)


def _parse_s3_query(query: str) -> tuple[bool, str | None]:
    try:
        params = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise ValueError("s3 storage URL query must be name=value pairs joined by &") from None
    unknown = set(params) - {"secure", "region"}
    if unknown:
        raise ValueError("s3 storage URL query accepts only secure= and region=")
    if any(len(values) > 1 for values in params.values()):
        raise ValueError("s3 storage URL query gives the same parameter twice")
    secure = True
    if "secure" in params:
        text = params["secure"][0].lower()
        if text not in _TRUE | _FALSE:
            raise ValueError("s3 storage URL secure= must be true or false")
        secure = text in _TRUE
    region = params["region"][0] if "region" in params else None
    if region is not None and not re.fullmatch(r"[a-z0-9-]{1,64}", region):
        raise ValueError("s3 storage URL region= must be a region name like us-east-1")
    return secure, region or None


async def sha256_hex(data: bytes) -> str:
    """The SHA-256 of ``data`` as an object key names it (hashed off the event loop when
    large)."""
    if len(data) <= _INLINE_HASH_BYTES:
        return hashlib.sha256(data).hexdigest()
    return await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())


def _hash_file(path: Path) -> tuple[str, int]:
    """SHA-256 (hex) and size in bytes of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as src:
        while chunk := src.read(_CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _file_identity(path: Path) -> tuple[int, int, int, int]:
    """What changes when a file is rewritten: device, inode, size, modification time (ns)."""
    stat = path.stat()
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns


def _file_size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
