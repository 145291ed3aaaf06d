"""A started service keeps what it made while starting out of the collector's full passes,
and gives it back when it stops."""

from __future__ import annotations

import gc
from pathlib import Path

from tests.integration.conftest import local_settings, serving


async def test_the_started_service_is_frozen_and_thawed_when_it_stops(
    database_url: str, tmp_path: Path
) -> None:
    assert gc.get_freeze_count() == 0
    async with serving(local_settings(database_url, tmp_path)) as api:
        assert gc.get_freeze_count() > 1000  # the modules, templates and models of the app
        found = await api.client.get("/healthz")
        assert found.status == 200
    assert gc.get_freeze_count() == 0
