"""End-to-end fixtures: the demo network in a fresh database, the service as a subprocess."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import DEMO_NETWORK, Service, running_service, service_env, telemed
from tests.s3 import S3Endpoint

#: Quick completion for tests: a study is complete 1 s after its last instance.
FAST = ("--stable-age", "1", "--sweep-interval", "0.3")


@pytest.fixture(params=["file", pytest.param("s3", marks=pytest.mark.s3)])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    """No STORAGE_URL (files under the data directory), or a fresh bucket on SeaweedFS."""
    if request.param == "file":
        return None
    endpoint: S3Endpoint = request.getfixturevalue("seaweedfs")
    return endpoint.url(f"e2e-{uuid.uuid4().hex[:16]}")


@pytest.fixture
def demo_service(database_url: str, storage_url: str | None, tmp_path: Path) -> Iterator[Service]:
    """The demo network imported by the CLI, and ``telemed serve`` running every role."""
    env = service_env(database_url=database_url, storage_url=storage_url, data_dir=tmp_path / "var")
    imported = telemed("network", "import", str(DEMO_NETWORK), env=env)
    assert "imported" in imported.stdout
    with running_service(env, *FAST) as service:
        yield service
