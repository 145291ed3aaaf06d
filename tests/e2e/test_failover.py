"""PostgreSQL failover under ingest: a primary with a synchronous streaming standby, the
service on a multi-host DATABASE_URL (``target_session_attrs=read-write``), clinics sending
over STOW-RS and C-STORE in a loop. The primary's postmaster is SIGKILLed mid-ingest and the
standby promoted: no acknowledged instance is lost (each is indexed on the promoted server,
its object in the store), and ingest succeeds again within 30 s of the promotion, with the
same service process (no restart), whose worker makes cases of studies sent after it."""

from __future__ import annotations

import asyncio
import io
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest
from pydicom import dcmread
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE

from tests.e2e.conftest import FAST
from tests.e2e.harness import (
    DEMO_NETWORK,
    Service,
    http,
    running_service,
    service_env,
    telemed,
    wait_for,
)
from tests.factory import SOP_CLASSES, make_study
from tests.integration.test_ingest import BOUNDARY, multipart
from tests.pg_cluster import DATABASE, Cluster

#: Each commit waits for the standby's flush: what the primary acknowledged, the standby has.
PRIMARY = {
    "wal_level": "replica",
    "synchronous_standby_names": "'standby1'",
    "synchronous_commit": "on",
}
#: How long the database is without a primary between the kill and the promotion.
OUTAGE_S = 2.0
RECOVER_S = 30.0
STOW_TYPE = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'


@dataclass
class Sender:
    """A clinic sending one new instance after another, noting each acknowledged one."""

    name: str
    acked: dict[str, float] = field(default_factory=dict)
    failed: list[float] = field(default_factory=list)
    #: The study of the last acknowledged instance.
    last_study: str = ""
    stop: threading.Event = field(default_factory=threading.Event)

    def instances(self) -> Iterator[bytes]:
        while True:
            study = generate_uid()
            yield from make_study(modality="CR", count=4, study_uid=study, size=32)

    def acked_after(self, t: float) -> list[float]:
        return sorted(at for at in list(self.acked.values()) if at > t)


def _stow_loop(service: Service, token: str, sender: Sender) -> None:
    for data in sender.instances():
        if sender.stop.is_set():
            return
        ds = dcmread(io.BytesIO(data))
        uid = str(ds.SOPInstanceUID)
        try:
            status, _, _ = http(
                "POST",
                f"{service.base_url}/dicomweb/studies",
                token=token,
                data=multipart(data),
                headers={"Content-Type": STOW_TYPE},
            )
        except OSError:
            status = 0
        if status == 200:
            sender.acked[uid] = time.monotonic()
            sender.last_study = str(ds.StudyInstanceUID)
        else:
            sender.failed.append(time.monotonic())
            time.sleep(0.2)


def _store_loop(service: Service, sender: Sender) -> None:
    ae = AE(ae_title="HBXLWD01")
    ae.add_requested_context(SOP_CLASSES["CR"], ExplicitVRLittleEndian)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 20
    assoc = None
    for data in sender.instances():
        if sender.stop.is_set():
            break
        ds = dcmread(io.BytesIO(data))
        if assoc is None or not assoc.is_established:
            assoc = ae.associate("127.0.0.1", service.dicom_port, ae_title="TELEMED")
        status = assoc.send_c_store(ds) if assoc.is_established else None
        if status is not None and getattr(status, "Status", None) == 0x0000:
            sender.acked[str(ds.SOPInstanceUID)] = time.monotonic()
        else:
            sender.failed.append(time.monotonic())
            if assoc.is_established:
                assoc.abort()
            time.sleep(0.2)
    if assoc is not None and assoc.is_established:
        assoc.release()


async def _fetch(dsn: str, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


@pytest.fixture
def clusters(tmp_path: Path) -> Iterator[tuple[Cluster, Cluster]]:
    """A primary and its synchronous streaming standby ``standby1``, made by pg_basebackup -R."""
    primary = Cluster(tmp_path / "pg" / "primary", settings=PRIMARY).init().start()
    standby = Cluster(tmp_path / "pg" / "standby")
    try:
        primary.base_backup(standby.data, standby="standby1")
        standby.start()
        wait_for(
            lambda: asyncio.run(
                _fetch(
                    primary.dsn("postgres"),
                    "select 1 from pg_stat_replication"
                    " where application_name = 'standby1' and sync_state = 'sync'",
                )
            ),
            timeout_s=20,
        )
        # Only now: with no standby, a commit would wait for one.
        asyncio.run(_fetch(primary.dsn("postgres"), f"create database {DATABASE}"))
        yield primary, standby
    finally:
        primary.finish()
        standby.finish()


def test_primary_killed_mid_ingest_loses_no_acknowledged_instance(
    clusters: tuple[Cluster, Cluster], tmp_path: Path
) -> None:
    primary, standby = clusters
    url = (
        f"postgresql://postgres@127.0.0.1:{primary.port},127.0.0.1:{standby.port}/{DATABASE}"
        "?target_session_attrs=read-write"
    )
    env = service_env(database_url=url, storage_url=None, data_dir=tmp_path / "var")
    telemed("network", "import", str(DEMO_NETWORK), env=env)
    with running_service(env, *FAST) as service:
        assert service.proc is not None
        pid = service.proc.pid
        stow, store = Sender("stow"), Sender("c-store")
        threads = [
            threading.Thread(target=_stow_loop, args=(service, service.token("xlwd.clinic"), stow)),
            threading.Thread(target=_store_loop, args=(service, store)),
        ]
        for thread in threads:
            thread.start()
        try:
            wait_for(lambda: len(stow.acked) >= 10 and len(store.acked) >= 10, timeout_s=30)
            killed_at = time.monotonic()
            primary.kill()
            time.sleep(OUTAGE_S)
            promoted_at = time.monotonic()
            standby.promote()
            promote_s = time.monotonic() - promoted_at
            wait_for(
                lambda: (
                    len(stow.acked_after(promoted_at)) >= 5
                    and len(store.acked_after(promoted_at)) >= 5
                ),
                timeout_s=RECOVER_S + 10,
            )
        finally:
            for sender in (stow, store):
                sender.stop.set()
            for thread in threads:
                thread.join(timeout=30)
        recovered = {s.name: s.acked_after(promoted_at)[0] - promoted_at for s in (stow, store)}
        print(
            f"\nfailover: promote took {promote_s:.2f} s; first acknowledged instance after "
            f"the promotion: "
            + ", ".join(f"{name} {secs:.2f} s" for name, secs in recovered.items())
            + f"; acknowledged {len(stow.acked)} over STOW, {len(store.acked)} over C-STORE; "
            f"refused {len(stow.failed)} and {len(store.failed)}"
        )
        assert all(secs < RECOVER_S for secs in recovered.values()), recovered
        # The senders met the outage (the kill was mid-ingest), and the same process served on.
        assert any(t > killed_at for t in stow.failed + store.failed)
        assert service.proc.poll() is None
        assert service.proc.pid == pid
        # The worker's queue connection came back too: a study sent after the promotion,
        # complete after its stable age, becomes a case on the promoted server.
        last_study = stow.last_study
        wait_for(
            lambda: asyncio.run(
                _fetch(
                    standby.dsn(),
                    "select 1 from reading_case c join study s on s.id = c.study_id"
                    " where s.study_instance_uid = $1",
                    last_study,
                )
            ),
            timeout_s=20,
        )
    acked = set(stow.acked) | set(store.acked)
    rows = asyncio.run(
        _fetch(
            standby.dsn(),
            "select sop_instance_uid, object_key from instance where sop_instance_uid = any($1)",
            list(acked),
        )
    )
    lost = acked - {r["sop_instance_uid"] for r in rows}
    assert not lost, f"{len(lost)} acknowledged instance(s) lost"
    objects = tmp_path / "var" / "objects"
    absent = [r["object_key"] for r in rows if not _object_path(objects, r["object_key"]).exists()]
    assert not absent
    env["DATABASE_URL"] = standby.dsn()
    verified = telemed("storage", "verify", env=env, check=False)
    assert verified.returncode == 0, verified.stdout
    assert " 0 missing, 0 damaged" in verified.stdout


def _object_path(root: Path, key: str) -> Path:
    return root / key[:2] / key[2:4] / key
