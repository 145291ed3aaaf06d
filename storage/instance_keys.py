"""The key a received DICOM instance is stored under, hashed once.

An instance's data set is hashed when it is received: that digest tells a duplicate from a
conflict (the same data set under another file meta header is the same instance). Its
object key is then the SHA-256 of the bytes before the data set (the zeroed preamble,
``DICM`` and the file meta group, a few hundred bytes) followed by the data set's digest.
Like the SHA-256 of the whole file, it changes with any byte of the file, and it costs a few
hundred bytes of hashing instead of every byte a second time.

Objects stored otherwise (reports, ECG files, an instance copied from a path outside the
spool) keep the SHA-256 of their bytes; a check of an object's bytes accepts either.
"""

from __future__ import annotations

import hashlib

__all__ = [
    "PREAMBLE_LENGTH",
    "dataset_offset",
    "dataset_split",
    "instance_key",
    "instance_key_of",
    "keys_match",
]

#: The Part-10 preamble: 128 bytes before ``DICM``.
PREAMBLE_LENGTH = 128


def dataset_offset(data: bytes | memoryview, size: int | None = None) -> int | None:
    """Where the data set starts, from the meta group length; None when it has none.

    ``data`` holds at least the file's first 144 bytes; ``size`` is the whole file's length
    when ``data`` is only its beginning.
    """
    meta_length_offset = PREAMBLE_LENGTH + 4 + 8  # (0002,0000) UL, explicit VR: tag VR len
    group_length = int.from_bytes(data[meta_length_offset : meta_length_offset + 4], "little")
    start = meta_length_offset + 4 + group_length
    total = len(data) if size is None else size
    if data[PREAMBLE_LENGTH + 4 : PREAMBLE_LENGTH + 8] != b"\x02\x00\x00\x00" or start > total:
        return None
    return start


def dataset_split(data: bytes | memoryview, size: int | None = None) -> int:
    """Where the bytes the data set's digest covers begin: the data set's start, or the end
    of the preamble when the file has no meta group length."""
    start = dataset_offset(data, size)
    return PREAMBLE_LENGTH if start is None else start


def instance_key(head: bytes | memoryview, dataset_sha256: str) -> str:
    """The object key of an instance whose bytes before ``dataset_split`` are ``head`` and
    whose data set (the rest) has the SHA-256 ``dataset_sha256``."""
    digest = hashlib.sha256(head)
    digest.update(bytes.fromhex(dataset_sha256))
    return digest.hexdigest()


def instance_key_of(data: bytes) -> str:
    """The instance key of a whole stored file."""
    view = memoryview(data)
    split = dataset_split(view)
    return instance_key(view[:split], hashlib.sha256(view[split:]).hexdigest())


def keys_match(data: bytes, key: str) -> bool:
    """Whether ``data`` are the bytes of the object ``key``: their SHA-256, or their
    instance key."""
    return hashlib.sha256(data).hexdigest() == key or instance_key_of(data) == key
