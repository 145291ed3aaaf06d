"""Fixtures for integration tests: real servers, fresh state per test."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from minio import Minio

from storage.objects import FileObjectStore, ObjectStore, S3ObjectStore, open_object_store
from tests.s3 import S3Endpoint


def unique_bucket_name() -> str:
    """A bucket name no other test uses."""
    return f"test-{uuid.uuid4().hex[:24]}"


def drop_bucket(client: Minio, bucket: str) -> None:
    """Remove a test bucket and everything in it (blocking)."""
    if not client.bucket_exists(bucket):
        return
    for item in client.list_objects(bucket, recursive=True):
        if item.object_name is not None:
            client.remove_object(bucket, item.object_name)
    client.remove_bucket(bucket)


@pytest.fixture(params=["file", pytest.param("s3", marks=pytest.mark.s3)])
async def object_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[ObjectStore]:
    """A fresh, started object store: a directory under tmp_path, or a new S3 bucket."""
    if request.param == "file":
        store: ObjectStore = FileObjectStore(tmp_path / "objects")
        async with store:
            yield store
        return
    endpoint: S3Endpoint = request.getfixturevalue("seaweedfs")
    bucket = unique_bucket_name()
    store = open_object_store(endpoint.url(bucket))
    assert isinstance(store, S3ObjectStore)
    try:
        async with store:
            yield store
    finally:
        await asyncio.to_thread(drop_bucket, endpoint.client(), bucket)
