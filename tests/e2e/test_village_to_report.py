"""The whole path with real parts: a village sends, the county reads, the report goes home.

Village 王店村 (HB-XL-WD) sends a CT by C-STORE with dcmtk's storescu from its own AE title;
village 李湾村 (HB-MJ-LW) sends a CR by STOW-RS with dicomweb-client. Both studies become
complete after the stable age, are routed to the county hospital's radiology pool, are
claimed and reported by the county reader, and each report reaches its own clinic only.
"""

from __future__ import annotations

import io
import subprocess
from pathlib import Path
from typing import Any

import pytest
from dicomweb_client.api import DICOMwebClient
from pydicom import dcmread

from tests.e2e.harness import Service, http, wait_for
from tests.factory import make_study, write_files

pytestmark = pytest.mark.dcmtk


def storescu(
    service: Service, calling_ae: str, files: list[Path]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "storescu",
            "-aet",
            calling_ae,
            "-aec",
            "TELEMED",
            "-nh",
            "127.0.0.1",
            str(service.dicom_port),
            *map(str, files),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**service.env, "TCP_NODELAY": "1"},
    )


def worklist(service: Service, token: str) -> list[dict[str, Any]]:
    status, _, body = http("GET", f"{service.base_url}/api/v1/worklist", token=token)
    assert status == 200, body
    cases: list[dict[str, Any]] = body["cases"]
    return cases


def inbox(service: Service, token: str) -> list[dict[str, Any]]:
    status, _, body = http("GET", f"{service.base_url}/api/v1/reports", token=token)
    assert status == 200, body
    reports: list[dict[str, Any]] = body["reports"]
    return reports


def test_village_study_is_read_at_the_county_and_the_report_reaches_only_its_clinic(
    demo_service: Service, tmp_path: Path
) -> None:
    service = demo_service
    reader = service.token("wang.reader")
    wd_clinic = service.token("xlwd.clinic")
    lw_clinic = service.token("mjlw.clinic")
    admin = service.token("hb.admin")

    # 1. 王店村 sends a 4-slice CT by C-STORE, from its workstation's AE title.
    ct = make_study(modality="CT", count=4, patient_id="WD-001", patient_name="王^小明")
    ct_uid = dcmread(io.BytesIO(ct[0])).StudyInstanceUID
    sent = storescu(service, "HBXLWD01", write_files(tmp_path / "ct", ct))
    assert sent.returncode == 0, sent.stderr

    # 2. 李湾村 sends a chest CR by STOW-RS with its clinic operator's token.
    cr = make_study(modality="CR", count=1, patient_id="LW-007", patient_name="李^秀英", size=128)
    cr_ds = dcmread(io.BytesIO(cr[0]))
    client = DICOMwebClient(
        url=f"{service.base_url}/dicomweb", headers={"Authorization": f"Bearer {lw_clinic}"}
    )
    response = client.store_instances(datasets=[cr_ds])
    stored = response.ReferencedSOPSequence
    assert [item.ReferencedSOPInstanceUID for item in stored] == [cr_ds.SOPInstanceUID]
    assert "FailedSOPSequence" not in response

    # Re-sending an instance is safe and stores it once.
    again = storescu(service, "HBXLWD01", write_files(tmp_path / "again", ct[:1]))
    assert again.returncode == 0, again.stderr

    # 3. Complete after the stable age, routed to the county radiology pool.
    cases = wait_for(lambda: len(worklist(service, reader)) == 2 and worklist(service, reader))
    by_study = {c["study_instance_uid"]: c for c in cases}
    assert set(by_study) == {ct_uid, cr_ds.StudyInstanceUID}
    assert all(c["status"] == "scheduled" and c["priority"] == "medium" for c in cases)
    status, _, studies = http("GET", f"{service.base_url}/api/v1/studies", token=wd_clinic)
    assert [s["num_instances"] for s in studies["studies"]] == [4]
    assert studies["studies"][0]["patient_name"] == "王^小明"

    # The county's ECG reader and the city reader do not see radiology cases of the county pool.
    assert worklist(service, service.token("li.ecg")) == []
    assert worklist(service, service.token("zhao.city")) == []

    # 4. The county reader claims and reports each case.
    reports = {}
    for uid, case in by_study.items():
        url = f"{service.base_url}/api/v1/cases/{case['id']}"
        status, _, claimed = http("POST", f"{url}/claim", token=reader)
        assert status == 200, claimed
        assert claimed["status"] == "in_progress"
        status, _, report = http(
            "POST",
            f"{url}/report",
            token=reader,
            body={
                "findings": "双肺纹理清晰，未见明确实变影。",
                "impression": "胸部未见明显异常。",
                "conclusion": "normal",
            },
        )
        assert status == 201, report
        assert report["status"] == "final"
        assert len(report["signature_sha256"]) == 64
        reports[uid] = report
    assert worklist(service, reader) == []

    # 5. Each clinic's inbox gets its own report, and only its own.
    wd_inbox = wait_for(lambda: inbox(service, wd_clinic))
    lw_inbox = wait_for(lambda: inbox(service, lw_clinic))
    assert [r["study_instance_uid"] for r in wd_inbox] == [ct_uid]
    assert [r["study_instance_uid"] for r in lw_inbox] == [cr_ds.StudyInstanceUID]
    assert wd_inbox[0]["case_id"] == by_study[ct_uid]["id"]
    assert wd_inbox[0]["conclusion"] == "normal"
    assert inbox(service, service.token("xlzz.clinic")) == []

    # ...nor the other village's case, report or study.
    other_case = by_study[cr_ds.StudyInstanceUID]["id"]
    other_report = reports[cr_ds.StudyInstanceUID]["id"]
    for path in (f"/api/v1/cases/{other_case}", f"/api/v1/reports/{other_report}"):
        status, headers, body = http("GET", service.base_url + path, token=wd_clinic)
        assert status == 404, body
        assert headers["Content-Type"].startswith("application/problem+json")
    status, _, found = http(
        "GET",
        f"{service.base_url}/dicomweb/studies?StudyInstanceUID={cr_ds.StudyInstanceUID}",
        token=wd_clinic,
    )
    assert status == 200
    assert found == []
    status, _, body = http(
        "POST", f"{service.base_url}/api/v1/reports/{other_report}/acknowledge", token=wd_clinic
    )
    assert status == 404

    # The clinic acknowledges its report.
    status, _, acked = http(
        "POST",
        f"{service.base_url}/api/v1/reports/{wd_inbox[0]['id']}/acknowledge",
        token=wd_clinic,
    )
    assert status == 200
    assert acked["acknowledged_at"] is not None

    # 6. Every step is an event on the server's clock, in order.
    status, _, case = http(
        "GET", f"{service.base_url}/api/v1/cases/{by_study[ct_uid]['id']}", token=wd_clinic
    )
    kinds = [e["kind"] for e in case["events"]]
    assert kinds == [
        "received",
        "complete",
        "routed",
        "claimed",
        "final",
        "delivered",
        "acknowledged",
    ]
    times = [e["at"] for e in case["events"]]
    assert times == sorted(times)
    assert all(t.endswith("Z") for t in times)

    # 7. Turnaround per sending facility, for the county administrator.
    status, _, stats = http("GET", f"{service.base_url}/api/v1/stats/turnaround", token=admin)
    assert status == 200, stats
    per_facility = {f["facility"]: f for f in stats["facilities"]}
    assert set(per_facility) == {"HB-XL-WD", "HB-MJ-LW"}
    assert all(f["reports"] == 1 and f["median_minutes"] > 0 for f in per_facility.values())
    # A clinic sees only its own facility's figures; a reader none.
    status, _, own = http("GET", f"{service.base_url}/api/v1/stats/turnaround", token=wd_clinic)
    assert [f["facility"] for f in own["facilities"]] == ["HB-XL-WD"]
    status, _, _ = http("GET", f"{service.base_url}/api/v1/stats/turnaround", token=reader)
    assert status == 403
