"""A received instance is hashed once: its key covers every byte of the stored file, is the
same whether it was parsed in memory or from a spooled file (in one chunk or many), and a
check of an object's bytes accepts it as it accepts the plain SHA-256 of other objects."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from storage.instance_keys import dataset_split, instance_key_of, keys_match
from teleradiology.core import dicom
from teleradiology.core.dicom import dataset_digest, parse_part10, parse_part10_file
from tests.factory import make_study


def _spooled(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "rx.dcm"
    path.write_bytes(data)
    return path


def test_the_key_is_the_head_then_the_data_sets_digest(tmp_path: Path) -> None:
    (sent,) = make_study(count=1)
    parsed = parse_part10(b"MZ" + sent[2:])  # the preamble is zeroed before it is keyed
    data = parsed.data
    split = dataset_split(data)
    assert split > 200  # after the meta group
    expected = hashlib.sha256(data[:split] + hashlib.sha256(data[split:]).digest())
    assert parsed.key == expected.hexdigest() == instance_key_of(data)
    assert parsed.header.dataset_sha256 == dataset_digest(data)
    assert parsed.key != hashlib.sha256(data).hexdigest()
    # the same bytes on disk: the same key and digest, from one pass over the file
    from_file = parse_part10_file(_spooled(tmp_path, data))
    assert from_file.key == parsed.key
    assert from_file.header.dataset_sha256 == parsed.header.dataset_sha256
    assert from_file.size_bytes == len(data)


def test_a_file_read_in_many_chunks_keys_as_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (sent,) = make_study(count=1, size=256)
    data = parse_part10(sent).data
    # chunks that end inside the meta group (past its length, which the first must hold):
    # the data set starts inside a later chunk
    assert dataset_split(data) > 200
    monkeypatch.setattr(dicom, "_HASH_CHUNK", 160)
    from_file = parse_part10_file(_spooled(tmp_path, data))
    assert from_file.key == instance_key_of(data)
    assert from_file.header.dataset_sha256 == dataset_digest(data)


@pytest.mark.parametrize("where", ["meta", "dataset", "last"])
def test_any_byte_changed_changes_the_key(where: str) -> None:
    (sent,) = make_study(count=1)
    data = bytearray(parse_part10(sent).data)
    at = {"meta": 140, "dataset": dataset_split(bytes(data)) + 10, "last": len(data) - 1}[where]
    before = instance_key_of(bytes(data))
    data[at] ^= 0x01
    assert instance_key_of(bytes(data)) != before


def test_an_objects_bytes_match_its_plain_or_instance_key() -> None:
    (sent,) = make_study(count=1)
    data = parse_part10(sent).data
    assert keys_match(data, instance_key_of(data))
    assert keys_match(data, hashlib.sha256(data).hexdigest())
    assert keys_match(b"a report", hashlib.sha256(b"a report").hexdigest())
    damaged = data[:-1] + bytes([data[-1] ^ 0x01])
    assert not keys_match(damaged, instance_key_of(data))
    assert not keys_match(damaged, hashlib.sha256(data).hexdigest())
