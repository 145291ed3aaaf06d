"""Fixtures for integration tests: real servers, fresh state per test."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from minio import Minio

from storage import network
from storage.objects import FileObjectStore, ObjectStore, S3ObjectStore, open_object_store
from storage.records import FacilitySpec, UserSpec
from teleradiology.core.network_file import parse_network
from teleradiology.http.context import POOL
from teleradiology.roles import DICOM, create_app
from teleradiology.services import administration
from teleradiology.settings import Settings
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


@dataclasses.dataclass
class Api:
    """The service in this process, on the test's database, with the demo network loaded."""

    client: TestClient[web.Request, web.Application]
    app: web.Application
    tokens: dict[str, str]

    @property
    def pool(self) -> asyncpg.Pool:
        return self.app[POOL]

    def auth(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[username]}"}


@functools.cache
def _demo_network(path: Path) -> tuple[list[FacilitySpec], list[UserSpec]]:
    """Parsed once: hashing every demo password is the slow part."""
    return parse_network(path.read_text("utf-8"))


@contextlib.asynccontextmanager
async def serving(settings: Settings, *, run_worker: bool = False) -> AsyncIterator[Api]:
    """The service in this process for ``settings`` (the worker's loops too, when asked),
    with the demo network loaded and a token for each of its users."""
    from tests.e2e.harness import DEMO_NETWORK

    app = create_app(settings, run_worker=run_worker)
    client: TestClient[web.Request, web.Application] = TestClient(TestServer(app))
    await client.start_server()
    try:
        pool = app[POOL]
        facilities, users = _demo_network(DEMO_NETWORK)
        await administration.import_network(pool, facilities, users)
        await app[DICOM].refresh_callers()
        tokens = {
            u.username: await network.create_token(pool, u.id)
            for u in await network.list_users(pool)
        }
        yield Api(client=client, app=app, tokens=tokens)
    finally:
        await client.close()


#: The national-ID key of the tests' services (a deployment's comes from its configuration).
TEST_NATIONAL_ID_KEY = bytes(range(32))


def local_settings(database_url: str, tmp_path: Path, **changes: object) -> Settings:
    """Settings of a service on loopback (the DICOM listener on a free port), with changes."""
    return Settings(
        data_dir=tmp_path / "var",
        database_url=database_url,
        http_host="127.0.0.1",
        dicom_host="127.0.0.1",
        dicom_port=0,
        national_id_key=TEST_NATIONAL_ID_KEY,
        # the demo network's titles are bound to no host, as 'serve --demo' accepts them
        dicom_allow_unbound=True,
    ).with_(**changes)


@pytest.fixture
async def api(database_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    """The HTTP API (and the DICOM listener on a free port) over the demo network."""
    settings = local_settings(database_url, tmp_path)
    async with serving(settings) as served:
        yield served


@pytest.fixture
async def webhook_receiver() -> AsyncIterator[tuple[str, list[Any]]]:
    """A webhook receiver on loopback: its URL, and the JSON bodies it took."""
    from tests.e2e.harness import free_port

    taken: list[Any] = []

    async def take(request: web.Request) -> web.Response:
        taken.append(await request.json())
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/hook", take)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/hook", taken
    finally:
        await runner.cleanup()
