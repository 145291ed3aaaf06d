"""ECG analyses and readers' edits, in the real database."""

from __future__ import annotations

import io
import os
import signal
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from storage import ecg
from storage.ecg import EcgOutcome
from storage.records import UserId
from teleradiology.http.context import OBJECTS
from teleradiology.services import ecg as ecg_service
from teleradiology.services.work_pool import WorkPool
from tests.factory import make_study, to_part10
from tests.integration.conftest import Api
from tests.integration.test_ingest import multipart, stow


def waveform(patient_id: str = "WD-9", study_uid: str | None = None) -> bytes:
    path = get_testdata_file("waveform_ecg.dcm")
    assert path is not None
    ds = pydicom.dcmread(Path(str(path)))
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientID = patient_id
    return to_part10(ds)


async def test_every_ecg_waveform_is_analyzed_once_and_images_are_not(api: Api) -> None:
    assert (await stow(api, multipart(waveform(), waveform(), *make_study(count=1)))).status == 200
    seen: list[int] = []

    def analyze(data: bytes) -> EcgOutcome:
        ds = pydicom.dcmread(io.BytesIO(data))
        seen.append(len(ds.WaveformSequence))
        return EcgOutcome(result={"measurements": {"heart_rate_bpm": 61.0}}, error=None)

    done = await ecg_service.analyze_pending(api.pool, api.app[OBJECTS], None, analyze=analyze)
    assert len(done) == 2
    assert seen == [2, 2]
    assert (
        await ecg_service.analyze_pending(api.pool, api.app[OBJECTS], None, analyze=analyze) == []
    )


async def test_a_failed_analysis_is_kept_with_its_reason_and_not_retried(api: Api) -> None:
    assert (await stow(api, multipart(waveform()))).status == 200

    def fail(data: bytes) -> EcgOutcome:
        return EcgOutcome(result=None, error="lead II is flat")

    (done,) = await ecg_service.analyze_pending(api.pool, api.app[OBJECTS], None, analyze=fail)
    assert await ecg_service.analyze_pending(api.pool, api.app[OBJECTS], None, analyze=fail) == []
    row = await api.pool.fetchrow("select result, error from ecg_analysis")
    assert row is not None
    assert row["result"] is None
    assert row["error"] == "lead II is flat"
    assert done.suspected_stemi is False


def _killed(data: bytes) -> EcgOutcome:
    """What an ECG that exhausts its process's memory does to it: the kernel kills it."""
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")


def _measured(data: bytes) -> EcgOutcome:
    return EcgOutcome(result={"measurements": {"heart_rate_bpm": 72.0}}, error=None)


async def test_an_analysis_that_kills_its_process_is_kept_failed_and_the_next_runs(
    api: Api,
) -> None:
    assert (await stow(api, multipart(waveform()))).status == 200
    pool = WorkPool(1, timeout_s=30, name="ECG analysis")
    try:
        objects = api.app[OBJECTS]
        (done,) = await ecg_service.analyze_pending(api.pool, objects, pool, analyze=_killed)
        assert done.suspected_stemi is False
        row = await api.pool.fetchrow("select result, error from ecg_analysis")
        assert row is not None
        assert row["result"] is None
        assert "the analysis was stopped" in row["error"]
        assert pool.replaced == 1
        # Not retried; the next ECG is analyzed in the new process.
        assert await ecg_service.analyze_pending(api.pool, objects, pool, analyze=_killed) == []
        assert (await stow(api, multipart(waveform()))).status == 200
        assert (
            len(await ecg_service.analyze_pending(api.pool, objects, pool, analyze=_measured)) == 1
        )
        assert await api.pool.fetchval("select count(*) from ecg_analysis where error is null") == 1
    finally:
        pool.shutdown()


async def test_edits_keep_who_changed_what_and_priors_are_the_same_patients(api: Api) -> None:
    first, second = waveform("WD-9"), waveform("WD-9")
    other = waveform("WD-10")
    assert (await stow(api, multipart(first, second, other))).status == 200

    def analyze(data: bytes) -> EcgOutcome:
        return EcgOutcome(result={"measurements": {"pr_ms": 160.0}}, error=None)

    await ecg_service.analyze_pending(api.pool, api.app[OBJECTS], None, analyze=analyze)
    uid = pydicom.dcmread(io.BytesIO(first)).SOPInstanceUID
    admin = await api.pool.fetchval("select id from app_user where username = 'hb.admin'")
    view = await ecg.ecg_for_user(api.pool, uid, UserId(admin))
    assert view is not None
    assert view.analysis_id is not None
    assert view.result == {"measurements": {"pr_ms": 160.0}}

    reader = UserId(await api.pool.fetchval("select id from app_user where username = 'li.ecg'"))
    edit = ecg_service.edit_analysis
    await edit(api.pool, view.analysis_id, reader, measurements={"pr_ms": 172.0})
    await edit(api.pool, view.analysis_id, reader, measurements={"pr_ms": 172.0})
    statements = [{"code": "SR", "text_zh": "窦性心律"}]
    await edit(api.pool, view.analysis_id, reader, statements=statements)
    history = await ecg.edits(api.pool, view.analysis_id)
    assert [(e.field, e.old_value, e.new_value, e.username) for e in history] == [
        ("measurements.pr_ms", None, 172.0, "li.ecg"),
        ("statements", None, statements, "li.ecg"),
    ]
    view = await ecg.ecg_for_user(api.pool, uid, UserId(admin))
    assert view is not None
    assert view.edited_measurements == {"pr_ms": 172.0}

    priors = await ecg.priors(api.pool, view, UserId(admin))
    assert [p.sop_instance_uid for p in priors] == [
        pydicom.dcmread(io.BytesIO(second)).SOPInstanceUID
    ]


async def test_an_ecg_outside_the_users_scope_is_not_found(api: Api) -> None:
    assert (await stow(api, multipart(waveform()), user="xlwd.clinic")).status == 200
    uid = await api.pool.fetchval("select sop_instance_uid from instance")
    other_clinic = UserId(
        await api.pool.fetchval("select id from app_user where username = 'mjlw.clinic'")
    )
    own_clinic = UserId(
        await api.pool.fetchval("select id from app_user where username = 'xlwd.clinic'")
    )
    assert await ecg.ecg_for_user(api.pool, uid, other_clinic) is None
    assert await ecg.ecg_for_user(api.pool, uid, own_clinic) is not None
