"""The national-ID key comes from the configuration, never the database: digests are made
under it, linking is refused without it, and the copy an earlier version kept in the
database must move to the configuration before the service starts (then it is deleted)."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from teleradiology.core.errors import ConfigError
from teleradiology.core.patients import national_id_digest, normalise_national_id
from teleradiology.services import patients
from tests.factory import make_study
from tests.integration.conftest import TEST_NATIONAL_ID_KEY, Api, local_settings, serving
from tests.integration.test_dicomweb import store

NATIONAL_ID = "41152719580312001x"


async def _link(api: Api) -> int:
    study = await store(api, "HB-XL-WD", make_study(modality="CR", count=1, patient_id="K-1"))
    ref = await api.pool.fetchval(
        "select patient_ref from study where study_instance_uid = $1", study
    )
    answer = await api.client.post(
        f"/api/v1/patients/{ref}/national-id",
        json={"national_id": NATIONAL_ID},
        headers=api.auth("xlwd.clinic"),
    )
    return answer.status


async def test_the_digest_is_made_under_the_configured_key(api: Api) -> None:
    assert await _link(api) == 200
    stored = await api.pool.fetchval("select national_id_digest from person")
    assert stored == national_id_digest(TEST_NATIONAL_ID_KEY, normalise_national_id(NATIONAL_ID))
    assert await api.pool.fetchval("select count(*) from service_secret") == 0


async def test_without_a_key_linking_is_refused_and_nothing_is_linked(
    database_url: str, tmp_path: Path
) -> None:
    async with serving(local_settings(database_url, tmp_path, national_id_key=None)) as api:
        assert await _link(api) == 501
        assert await api.pool.fetchval("select count(*) from person") == 0


async def test_a_key_left_in_the_database_must_move_to_the_configuration(
    database_url: str, tmp_path: Path
) -> None:
    legacy = bytes(range(100, 132))
    conn = await asyncpg.connect(database_url)
    try:
        async with serving(local_settings(database_url, tmp_path)):
            pass  # the schema
        await conn.execute(
            "insert into service_secret (name, value) values ('national_id_hmac', $1)", legacy
        )
        for key in (None, TEST_NATIONAL_ID_KEY):
            with pytest.raises(ConfigError, match="national-id-key export"):
                async with serving(local_settings(database_url, tmp_path, national_id_key=key)):
                    pass
        async with serving(local_settings(database_url, tmp_path, national_id_key=legacy)) as api:
            assert await patients.export_legacy_key(api.pool) == legacy
            with pytest.raises(ConfigError):
                await patients.forget_legacy_key(api.pool, TEST_NATIONAL_ID_KEY)
            assert await patients.forget_legacy_key(api.pool, legacy) is True
        assert await conn.fetchval("select count(*) from service_secret") == 0
        async with serving(local_settings(database_url, tmp_path, national_id_key=None)):
            pass  # nothing left to move: the service starts (and refuses links)
    finally:
        await conn.close()
