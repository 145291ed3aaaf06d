"""The restore drill: a base backup and a WAL archive, ingest before and after a named restore
point, then a point-in-time restore into a fresh data directory. On the restored cluster with
the same object store, ``telemed storage verify --read`` finds every restored row's object;
the rows after the restore point are absent, their objects orphans that ``telemed storage
collect`` deletes only once older than the grace period. deploy/restore-drill.md is the same
drill for an operator."""

from __future__ import annotations

import asyncio
import io
import os
import time
from pathlib import Path

from pydicom import dcmread

from tests.e2e.conftest import FAST
from tests.e2e.harness import DEMO_NETWORK, Service, http, running_service, service_env, telemed
from tests.e2e.test_failover import STOW_TYPE, _fetch, _object_path
from tests.factory import make_study
from tests.integration.test_ingest import multipart
from tests.pg_cluster import DATABASE, Cluster, copy_data, own

POINT = "before_the_mistake"


def _send(service: Service, token: str, count: int) -> list[str]:
    """``count`` instances over STOW-RS, each acknowledged: their SOP Instance UIDs."""
    sent = []
    for data in make_study(modality="CR", count=count, size=32):
        status, _, answer = http(
            "POST",
            f"{service.base_url}/dicomweb/studies",
            token=token,
            data=multipart(data),
            headers={"Content-Type": STOW_TYPE},
        )
        assert status == 200, answer
        sent.append(str(dcmread(io.BytesIO(data)).SOPInstanceUID))
    return sent


def test_point_in_time_restore_finds_every_object_and_leaves_later_ones_orphans(
    tmp_path: Path,
) -> None:
    archive = own(tmp_path / "pg" / "archive")
    source = Cluster(
        tmp_path / "pg" / "source",
        settings={
            "wal_level": "replica",
            "archive_mode": "on",
            "archive_command": f"'test ! -f {archive}/%f && cp %p {archive}/%f'",
        },
    )
    restored = Cluster(tmp_path / "pg" / "restored")
    try:
        source.init().start()
        asyncio.run(_fetch(source.dsn("postgres"), f"create database {DATABASE}"))
        env = service_env(database_url=source.dsn(), storage_url=None, data_dir=tmp_path / "var")
        telemed("network", "import", str(DEMO_NETWORK), env=env)
        with running_service(env, *FAST, "--role", "api") as service:
            token = service.token("xlwd.clinic")
            before_backup = _send(service, token, 3)
            source.base_backup(tmp_path / "backup")
            after_backup = _send(service, token, 3)
            asyncio.run(_fetch(source.dsn(), f"select pg_create_restore_point('{POINT}')"))
            after_point = _send(service, token, 3)
        segment = asyncio.run(_fetch(source.dsn(), "select pg_walfile_name(pg_switch_wal())"))
        wait_archived(archive, segment[0][0])
        source.stop()  # the database is lost; the archive and the base backup remain

        copy_data(tmp_path / "backup", restored.data)
        (restored.data / "recovery.signal").touch()
        with (restored.data / "postgresql.auto.conf").open("a") as conf:
            conf.write(
                f"restore_command = 'cp {archive}/%f %p'\n"
                f"recovery_target_name = '{POINT}'\n"
                "recovery_target_action = 'promote'\n"
            )
        restored.start()
        started = time.monotonic()
        while asyncio.run(_fetch(restored.dsn(), "select pg_is_in_recovery()"))[0][0]:
            assert time.monotonic() - started < 30, "the restore did not finish"
            time.sleep(0.2)
        restored_log = restored.log.read_text()
        assert f'recovery stopping at restore point "{POINT}"' in restored_log, restored_log

        rows = asyncio.run(
            _fetch(restored.dsn(), "select sop_instance_uid, object_key from instance")
        )
        uids = {r["sop_instance_uid"] for r in rows}
        assert uids == set(before_backup) | set(after_backup)
        assert not uids & set(after_point)

        env["DATABASE_URL"] = restored.dsn()
        verified = telemed("storage", "verify", "--read", env=env, check=False)
        assert verified.returncode == 0, verified.stdout
        assert "checked 6 object(s) rows refer to: 0 missing, 0 damaged" in verified.stdout

        objects = tmp_path / "var" / "objects"
        stored = sorted(p for p in objects.glob("??/??/*"))
        assert len(stored) == 9
        referred = {r["object_key"] for r in rows}
        orphans = [p for p in stored if p.name not in referred]
        assert len(orphans) == 3
        young = telemed("storage", "collect", env=env)
        assert "collected 0 that no row refers to" in young.stdout, young.stdout
        assert all(p.exists() for p in orphans)
        week_ago = time.time() - 8 * 24 * 3600
        for path in stored:
            os.utime(path, (week_ago, week_ago))
        old = telemed("storage", "collect", env=env)
        assert "looked at 9 object(s) older than 168 h: collected 3" in old.stdout, old.stdout
        assert not any(p.exists() for p in orphans)
        assert all(_object_path(objects, key).exists() for key in referred)
        again = telemed("storage", "verify", env=env, check=False)
        assert again.returncode == 0, again.stdout
    finally:
        source.finish()
        restored.finish()


def wait_archived(archive: Path, segment: str) -> None:
    deadline = time.monotonic() + 20
    while not (archive / segment).exists():
        assert time.monotonic() < deadline, f"WAL segment {segment} not archived"
        time.sleep(0.1)
