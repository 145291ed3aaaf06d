"""The object store contract, run against a directory and a real S3 server (SeaweedFS)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from storage.errors import IntegrityError, ObjectNotFound, StorageError
from storage.objects import FileObjectStore, ObjectStore, S3ObjectStore, open_object_store
from tests.integration.conftest import drop_bucket, unique_bucket_name
from tests.s3 import S3Endpoint

BIG_BYTES = 20 * 1024 * 1024
BAD_KEYS = [
    "../etc/passwd",
    "../" + "a" * 61,
    "ab/cd/" + "a" * 58,
    "A" * 64,  # upper case is not the canonical spelling
    "a" * 63,
    "a" * 65,
    "g" * 64,
    "",
    "a" * 63 + "\n",
]

Listing = Callable[[], Awaitable[list[str]]]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def stored_names(object_store: ObjectStore, request: pytest.FixtureRequest) -> Listing:
    """Every name the backend holds (files below the root, or objects in the bucket)."""
    if isinstance(object_store, FileObjectStore):
        root = object_store.root

        async def list_files() -> list[str]:
            return sorted(
                str(p.relative_to(root)) for p in await asyncio.to_thread(_walk_files, root)
            )

        return list_files
    assert isinstance(object_store, S3ObjectStore)
    client = request.getfixturevalue("seaweedfs").client()
    bucket = object_store.bucket

    async def list_objects() -> list[str]:
        objects = await asyncio.to_thread(lambda: list(client.list_objects(bucket, recursive=True)))
        return sorted(o.object_name for o in objects if o.object_name is not None)

    return list_objects


def _walk_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


@pytest.fixture(scope="session")
def big_data() -> bytes:
    return os.urandom(BIG_BYTES)


@pytest.fixture(scope="session")
def big_file(tmp_path_factory: pytest.TempPathFactory, big_data: bytes) -> Path:
    """A 20 MiB file, about the size of a CT series' worth of instances."""
    path = tmp_path_factory.mktemp("big") / "study.bin"
    path.write_bytes(big_data)
    return path


# The contract, for every backend.


async def test_put_then_get_round_trips_and_the_key_is_the_sha256(
    object_store: ObjectStore,
) -> None:
    data = b"DICM\x00" + os.urandom(1000)
    key = await object_store.put(data)
    assert key == sha256_hex(data)
    assert await object_store.get(key) == data


async def test_empty_object_round_trips(object_store: ObjectStore) -> None:
    key = await object_store.put(b"")
    assert key == sha256_hex(b"")
    assert await object_store.get(key) == b""
    assert await object_store.size(key) == 0


async def test_objects_are_stored_under_sharded_names(
    object_store: ObjectStore, stored_names: Listing
) -> None:
    key = await object_store.put(b"sharded")
    assert await stored_names() == [f"{key[:2]}/{key[2:4]}/{key}"]


async def test_putting_the_same_bytes_twice_stores_them_once(
    object_store: ObjectStore, stored_names: Listing
) -> None:
    data = os.urandom(4096)
    first = await object_store.put(data)
    second = await object_store.put(data)
    assert first == second
    assert len(await stored_names()) == 1
    assert await object_store.get(first) == data


async def test_put_file_streams_a_large_file_and_matches_put_of_the_same_bytes(
    object_store: ObjectStore, stored_names: Listing, big_file: Path, big_data: bytes
) -> None:
    key = await object_store.put_file(big_file)
    data = big_data
    assert key == sha256_hex(data)
    assert await object_store.size(key) == BIG_BYTES
    assert await object_store.get(key) == data
    assert await object_store.put(data) == key
    assert await object_store.put_file(big_file) == key
    assert len(await stored_names()) == 1


async def test_put_file_of_a_missing_file_raises_oserror(
    object_store: ObjectStore, tmp_path: Path
) -> None:
    with pytest.raises(FileNotFoundError):
        await object_store.put_file(tmp_path / "absent.dcm")


async def test_distinct_contents_get_distinct_keys(object_store: ObjectStore) -> None:
    blobs = [os.urandom(100) for _ in range(20)]
    keys = await asyncio.gather(*(object_store.put(b) for b in blobs))
    assert len(set(keys)) == len(blobs)
    for key, blob in zip(keys, blobs, strict=True):
        assert await object_store.get(key) == blob


async def test_concurrent_puts_of_the_same_bytes_agree(
    object_store: ObjectStore, stored_names: Listing
) -> None:
    data = os.urandom(300_000)
    keys = await asyncio.gather(*(object_store.put(data) for _ in range(8)))
    assert set(keys) == {sha256_hex(data)}
    assert await object_store.get(keys[0]) == data
    assert len(await stored_names()) == 1


async def test_a_missing_key_raises_object_not_found(object_store: ObjectStore) -> None:
    key = sha256_hex(b"never stored")
    with pytest.raises(ObjectNotFound):
        await object_store.get(key)
    with pytest.raises(ObjectNotFound):
        await object_store.size(key)
    assert await object_store.exists(key) is False


@pytest.mark.parametrize("key", BAD_KEYS)
async def test_a_malformed_key_raises_value_error_before_any_io(
    object_store: ObjectStore, stored_names: Listing, key: str
) -> None:
    with pytest.raises(ValueError, match="64 lowercase hex"):
        await object_store.get(key)
    with pytest.raises(ValueError, match="64 lowercase hex"):
        await object_store.exists(key)
    with pytest.raises(ValueError, match="64 lowercase hex"):
        await object_store.size(key)
    with pytest.raises(ValueError, match="64 lowercase hex"):
        await object_store.delete(key)
    assert await stored_names() == []


async def test_exists_and_size(object_store: ObjectStore) -> None:
    data = os.urandom(12345)
    key = sha256_hex(data)
    assert await object_store.exists(key) is False
    await object_store.put(data)
    assert await object_store.exists(key) is True
    assert await object_store.size(key) == 12345


async def test_delete_removes_and_is_idempotent(
    object_store: ObjectStore, stored_names: Listing
) -> None:
    key = await object_store.put(b"to be deleted")
    await object_store.delete(key)
    assert await object_store.exists(key) is False
    with pytest.raises(ObjectNotFound):
        await object_store.get(key)
    await object_store.delete(key)
    await object_store.delete(sha256_hex(b"never stored"))
    assert await stored_names() == []
    # The same content can be stored again afterwards.
    assert await object_store.put(b"to be deleted") == key
    assert await object_store.get(key) == b"to be deleted"


# File backend only: what a crash may and may not leave behind.


async def test_file_store_leaves_no_temporary_files(tmp_path: Path, big_file: Path) -> None:
    store = FileObjectStore(tmp_path / "objects")
    keys = [await store.put(os.urandom(n)) for n in (0, 1, 70_000)]
    keys.append(await store.put_file(big_file))
    await store.put(b"")  # a no-op second write
    files = _walk_files(store.root)
    assert sorted(files) == sorted(store.path_of(k) for k in keys)
    # Objects are private to the service's user.
    assert {f.stat().st_mode & 0o777 for f in files} == {0o600}


def _same_shard(data: bytes, count: int) -> list[bytes]:
    """``count`` other contents whose objects land in the shard directory (``ab/cd``) of
    ``data``'s."""
    shard, n = sha256_hex(data)[:4], 0
    found: list[bytes] = []
    while len(found) < count:
        other = b"%d" % n
        if sha256_hex(other)[:4] == shard and other != data:
            found.append(other)
        n += 1
    return found


async def test_file_store_makes_every_new_directory_entry_durable_before_it_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An object is acknowledged only when its name, and the names of the shard directories
    made for it, are on disk: each directory is synced once, after the object's own fsync,
    and again by a store that finds it made by someone else (another process, say)."""
    synced: list[Path] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        real_fsync(fd)
        synced.append(Path(os.readlink(f"/proc/self/fd/{fd}")))

    monkeypatch.setattr(os, "fsync", fsync)
    root = tmp_path / "objects"
    store = FileObjectStore(root)
    first = b"the first object"
    key = await store.put(first)
    shard = store.path_of(key).parent
    # The object's data, then its name in ab/cd, then cd's name in ab and ab's in the root.
    assert synced[1:] == [shard, shard.parent, root], synced
    assert synced[0].parent == shard
    assert synced[0].name.endswith(".tmp")

    second, third = _same_shard(first, 2)
    synced.clear()
    await store.put(second)
    assert synced[1:] == [shard], synced  # the shard directory's names are known durable

    synced.clear()
    elsewhere = FileObjectStore(root)  # a store that did not make the shard directories
    (tmp_path / "third").write_bytes(third)
    assert elsewhere.path_of(await elsewhere.put_file(tmp_path / "third")).parent == shard
    assert synced[1:] == [shard, shard.parent, root], synced


async def test_file_store_does_not_rewrite_an_existing_object(
    tmp_path: Path, big_file: Path, big_data: bytes
) -> None:
    store = FileObjectStore(tmp_path / "objects")
    key = await store.put_file(big_file)
    before = store.path_of(key).stat()
    await store.put(big_data)
    await store.put_file(big_file)
    after = store.path_of(key).stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


async def test_file_store_failed_write_leaves_nothing_under_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileObjectStore(tmp_path / "objects")
    data = os.urandom(10_000)

    def failing_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(StorageError, match="No space left"):
        await store.put(data)
    monkeypatch.undo()
    assert not await store.exists(sha256_hex(data))
    assert _walk_files(store.root) == []
    assert await store.get(await store.put(data)) == data


async def test_file_store_put_file_of_a_file_changed_midway_stores_nothing(
    tmp_path: Path,
) -> None:
    store = FileObjectStore(tmp_path / "objects")
    source = tmp_path / "growing.bin"
    source.write_bytes(os.urandom(3 * 1024 * 1024))
    real_put_file = FileObjectStore._put_file

    def append_before_copy(self: FileObjectStore, key: str, size: int, path: Path) -> None:
        with path.open("ab") as f:  # the modality is still writing
            f.write(b"more")
        real_put_file(self, key, size, path)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(FileObjectStore, "_put_file", append_before_copy)
        with pytest.raises(IntegrityError, match="changed while it was being stored"):
            await store.put_file(source)
    assert _walk_files(store.root) == []


_CRASHING_WRITER = """
import asyncio, os, stat, sys, time
from pathlib import Path
from storage.objects import FileObjectStore

real_fsync = os.fsync

def fsync_then_hang(fd):
    real_fsync(fd)
    if stat.S_ISREG(os.fstat(fd).st_mode):
        # The object is fully in its temporary file; signal and wait to be killed.
        Path(sys.argv[3]).write_text("ready")
        time.sleep(600)

os.fsync = fsync_then_hang
asyncio.run(FileObjectStore(Path(sys.argv[1])).put_file(Path(sys.argv[2])))
"""


@pytest.mark.parametrize("before", ["absent", "damaged"])
async def test_file_store_killed_mid_write_never_exposes_a_partial_object(
    tmp_path: Path, big_file: Path, big_data: bytes, before: str
) -> None:
    """SIGKILL a writer just before its rename: the key holds what it held before, or nothing."""
    store = FileObjectStore(tmp_path / "objects")
    data = big_data
    key = sha256_hex(data)
    target = store.path_of(key)
    if before == "damaged":
        # An earlier, truncated copy (a disk fault): the next write repairs it.
        target.parent.mkdir(parents=True)
        target.write_bytes(data[: len(data) // 3])
    old = target.stat() if before == "damaged" else None

    marker = tmp_path / "ready"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _CRASHING_WRITER,
        str(store.root),
        str(big_file),
        str(marker),
        cwd=Path(__file__).parents[2],
    )
    try:
        async with asyncio.timeout(60):
            while not marker.exists():
                assert proc.returncode is None, "the writer exited before writing"
                await asyncio.sleep(0.02)
    finally:
        proc.kill()
        await proc.wait()

    leftovers = [p for p in _walk_files(store.root) if p != target]
    assert len(leftovers) == 1
    assert leftovers[0].name.startswith(f".{key}.")
    assert leftovers[0].stat().st_size == len(data)
    if old is None:
        assert not target.exists()
        assert not await store.exists(key)
    else:
        now = target.stat()
        assert (now.st_ino, now.st_size, now.st_mtime_ns) == (
            old.st_ino,
            old.st_size,
            old.st_mtime_ns,
        )
    # The next writer is not disturbed by the leftover and completes the object.
    assert await store.put_file(big_file) == key
    assert await store.get(key) == data


# S3 backend only.


@pytest.mark.s3
async def test_s3_store_creates_its_bucket_and_honours_the_prefix(seaweedfs: S3Endpoint) -> None:
    bucket = unique_bucket_name()
    client = seaweedfs.client()
    assert not await asyncio.to_thread(client.bucket_exists, bucket)
    store = open_object_store(seaweedfs.url(bucket, "clinic/objects"))
    try:
        key = await store.put(b"prefixed")  # no start(): the first use creates the bucket
        names = await asyncio.to_thread(
            lambda: [o.object_name for o in client.list_objects(bucket, recursive=True)]
        )
        assert names == [f"clinic/objects/{key[:2]}/{key[2:4]}/{key}"]
        assert await store.get(key) == b"prefixed"
        # A second store over the same bucket with another prefix does not see it.
        other = open_object_store(seaweedfs.url(bucket, "elsewhere"))
        assert not await other.exists(key)
        await other.close()
    finally:
        await store.close()
        await asyncio.to_thread(drop_bucket, client, bucket)


@pytest.mark.s3
async def test_s3_store_with_wrong_credentials_fails_without_leaking_them(
    seaweedfs: S3Endpoint,
) -> None:
    url = seaweedfs.url(unique_bucket_name()).replace(seaweedfs.secret_key, "wrong-secret-Xq7", 1)
    store = open_object_store(url)
    try:
        with pytest.raises(StorageError) as caught:
            await store.start()
    finally:
        await store.close()
    assert "wrong-secret-Xq7" not in str(caught.value)
    assert "wrong-secret-Xq7" not in repr(store)


@pytest.mark.s3
async def test_s3_store_unreachable_server_raises_storage_error() -> None:
    # Port 1 on loopback refuses connections; retries are bounded.
    store = open_object_store("s3://key:secret@127.0.0.1:1/some-bucket?secure=false")
    try:
        async with asyncio.timeout(60):
            with pytest.raises(StorageError, match="S3 could not"):
                await store.get(sha256_hex(b"x"))
    finally:
        await store.close()
