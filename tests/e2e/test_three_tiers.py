"""The three tiers with real parts: village → county → city, and the reports going home.

Village 胡寨村 (HB-MJ-HZ) sends an urgent chest CR and a routine 12-lead ECG by C-STORE
(dcmtk's storescu). The county radiology reader escalates the CR with a question; the city
reader finalises it as a critical result. The county ECG reader finalises the ECG. Nobody
at the clinic acknowledges the critical result in time: it is re-sent and the county's
duty administrator is alerted. The clinic's own DICOM receiver (dcmtk's storescp) gets
each report as an encapsulated PDF and a Basic Text SR; the clinic prints the PDF,
acknowledges, and the turnaround API reports each segment.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread

from tests.e2e.harness import (
    DEMO_NETWORK,
    Service,
    free_port,
    http,
    running_service,
    service_env,
    telemed,
    wait_for,
)
from tests.e2e.test_village_to_report import storescu
from tests.ecg_file import make_ecg
from tests.factory import make_study, write_files

pytestmark = pytest.mark.dcmtk


@contextlib.contextmanager
def storescp(folder: Path, port: int) -> Iterator[None]:
    """The clinic workstation's DICOM receiver."""
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        ["storescp", "-aet", "HBMJHZWS", "-od", str(folder), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def clinic_node(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    port = free_port()
    with storescp(tmp_path / "received", port):
        yield tmp_path / "received", port


@pytest.fixture
def three_tier_service(
    database_url: str, tmp_path: Path, clinic_node: tuple[Path, int]
) -> Iterator[Service]:
    """The demo network with the clinic's receiver on a free port and a 3-second window
    for acknowledging critical results."""
    text = DEMO_NETWORK.read_text("utf-8")
    text = text.replace("port = 11113", f"port = {clinic_node[1]}")
    text = text.replace("critical_ack_minutes = 15", "critical_ack_minutes = 0.05")
    network_file = tmp_path / "network.toml"
    network_file.write_text(text, "utf-8")
    env = service_env(database_url=database_url, storage_url=None, data_dir=tmp_path / "var")
    telemed("network", "import", str(network_file), env=env)
    with running_service(env, "--stable-age", "1", "--sweep-interval", "0.3") as service:
        yield service


def _get(service: Service, path: str, token: str) -> Any:
    status, _, body = http("GET", service.base_url + path, token=token)
    assert status == 200, (path, body)
    return body


def _post(service: Service, path: str, token: str, body: Any = None) -> Any:
    status, _, answer = http("POST", service.base_url + path, token=token, body=body or {})
    assert status in (200, 201), (path, answer)
    return answer


def _case(service: Service, token: str, uid: str) -> dict[str, Any] | None:
    cases = _get(service, "/api/v1/worklist", token)["cases"]
    return next((c for c in cases if c["study_instance_uid"] == uid), None)


def _events(service: Service, token: str, *, until: int, kind: str) -> list[dict[str, Any]]:
    """Read the user's event stream from the start until ``until`` events of ``kind``."""
    request = urllib.request.Request(
        f"{service.base_url}/api/v1/events?after=0",
        headers={"Authorization": f"Bearer {token}"},
    )
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30
    with urllib.request.urlopen(request, timeout=30) as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        for raw in stream:
            line = raw.decode().rstrip("\n")
            if line.startswith("data: "):
                found.append(json.loads(line[6:]))
                if sum(e["kind"] == kind for e in found) >= until:
                    return found
            assert time.monotonic() < deadline, found
    return found


def test_village_county_city_and_the_reports_go_home(
    three_tier_service: Service, clinic_node: tuple[Path, int], tmp_path: Path
) -> None:
    service = three_tier_service
    county = service.token("wang.reader")
    county_ecg = service.token("li.ecg")
    city = service.token("zhao.city")
    clinic = service.token("mjhz.clinic")
    duty = service.token("hb.duty")
    admin = service.token("hb.admin")

    # 1. The village sends a chest CR, asks for an urgent reading, and a routine ECG.
    cr = make_study(modality="CR", count=1, patient_id="HZ-001", patient_name="胡^建国", size=128)
    cr_uid = dcmread(io.BytesIO(cr[0])).StudyInstanceUID
    ecg = make_ecg(patient_id="HZ-001", patient_name="胡^建国")
    ecg_uid = dcmread(io.BytesIO(ecg)).StudyInstanceUID
    sent = storescu(service, "HBMJHZ01", write_files(tmp_path / "cr", cr))
    assert sent.returncode == 0, sent.stderr
    _post(
        service,
        f"/api/v1/studies/{cr_uid}/reading-request",
        clinic,
        {"urgency": "urgent", "question": "咳嗽发热一周"},
    )
    sent = storescu(service, "HBMJHZ01", write_files(tmp_path / "ecg", [ecg]))
    assert sent.returncode == 0, sent.stderr

    # 2. The county radiology reader claims the urgent CR and escalates it with a question.
    cr_case = wait_for(lambda: _case(service, county, cr_uid))
    assert cr_case["priority"] == "high"
    assert cr_case["suggested_reader"] == "wang.reader"
    _post(service, f"/api/v1/cases/{cr_case['id']}/claim", county)
    _post(
        service,
        f"/api/v1/cases/{cr_case['id']}/escalate",
        county,
        {
            "question": "右下肺片状影，肺炎还是肿瘤？",
            "findings": "右下肺见片状密度增高影。",
            "impression": "右下肺炎可能。",
            "conclusion": "abnormal",
        },
    )
    assert _case(service, county, cr_uid) is None

    # 3. The city reader sees the draft and the question, and finalises: critical.
    seen = _get(service, f"/api/v1/cases/{cr_case['id']}", city)
    assert seen["question"] == "右下肺片状影，肺炎还是肿瘤？"
    assert [r["status"] for r in seen["reports"]] == ["preliminary"]
    _post(service, f"/api/v1/cases/{cr_case['id']}/claim", city)
    critical = _post(
        service,
        f"/api/v1/cases/{cr_case['id']}/report",
        city,
        {
            "findings": "右下肺见团块影，边缘分叶，伴右侧大量胸腔积液。",
            "impression": "右下肺占位伴大量胸腔积液，请立即处置。",
            "conclusion": "critical",
        },
    )
    assert critical["agreed"] is False

    # 4. The county ECG reader finalises the routine ECG.
    ecg_case = wait_for(lambda: _case(service, county_ecg, ecg_uid))
    assert ecg_case["priority"] == "medium"
    _post(service, f"/api/v1/cases/{ecg_case['id']}/claim", county_ecg)
    _post(
        service,
        f"/api/v1/cases/{ecg_case['id']}/report",
        county_ecg,
        {
            "findings": "窦性心律，心率72次/分。",
            "impression": "正常心电图。",
            "conclusion": "normal",
        },
    )

    # 5. The critical result is pushed, goes unacknowledged, is pushed again, and the
    #    county's duty administrator is alerted; every notification is recorded.
    pushed = _events(service, clinic, until=2, kind="critical")
    assert [e["report_id"] for e in pushed if e["kind"] == "critical"][:2] == [critical["id"]] * 2
    ecg_pushed = _events(service, clinic, until=1, kind="report")
    assert [e["detail"]["conclusion"] for e in ecg_pushed if e["kind"] == "report"] == ["normal"]
    alerts = _events(service, duty, until=1, kind="critical_alert")
    assert alerts[-1]["report_id"] == critical["id"]
    record = _get(service, f"/api/v1/reports/{critical['id']}/notifications", admin)
    kinds = [n["kind"] for n in record["notifications"]]
    assert kinds.count("critical") >= 2
    assert "critical_alert" in kinds

    # 6. Acknowledging a critical result needs the name of the person who took it, and
    # what they repeated back.
    status, _, problem = http(
        "POST", f"{service.base_url}/api/v1/reports/{critical['id']}/acknowledge", token=clinic
    )
    assert status == 409, problem
    acked = _post(
        service,
        f"/api/v1/reports/{critical['id']}/acknowledge",
        clinic,
        {"name": "胡村医", "read_back": "急性心梗，危急值"},
    )
    assert acked["acknowledged_by_name"] == "胡村医"

    # 7. The printable PDF, with the CJK font embedded.
    inbox = wait_for(
        lambda: (
            len(_get(service, "/api/v1/reports", clinic)["reports"]) == 2
            and _get(service, "/api/v1/reports", clinic)["reports"]
        )
    )
    with urllib.request.urlopen(
        urllib.request.Request(
            f"{service.base_url}/api/v1/reports/{critical['id']}/pdf",
            headers={"Authorization": f"Bearer {clinic}"},
        )
    ) as response:
        pdf = response.read()
    assert pdf.startswith(b"%PDF")
    assert b"NotoSansCJK" in pdf
    assert b"FontFile" in pdf
    ecg_report = next(r for r in inbox if r["id"] != critical["id"])
    _post(service, f"/api/v1/reports/{ecg_report['id']}/acknowledge", clinic)

    # 8. The clinic's own receiver got an encapsulated PDF and a Basic Text SR of each.
    folder = clinic_node[0]
    files = wait_for(lambda: len(list(folder.iterdir())) >= 4 and sorted(folder.iterdir()))
    received = [dcmread(f) for f in files]
    by_class = sorted((ds.SOPClassUID.name, ds.StudyInstanceUID) for ds in received)
    assert by_class == sorted(
        [
            ("Basic Text SR Storage", cr_uid),
            ("Encapsulated PDF Storage", cr_uid),
            ("Basic Text SR Storage", ecg_uid),
            ("Encapsulated PDF Storage", ecg_uid),
        ]
    )
    for path, ds in zip(files, received, strict=True):
        if ds.SOPClassUID.name == "Basic Text SR Storage":
            dump = subprocess.run(["dsrdump", str(path)], capture_output=True, text=True)
            assert dump.returncode == 0, dump.stderr
            assert "Basic Text SR Document" in dump.stdout
        else:
            assert bytes(ds.EncapsulatedDocument).startswith(b"%PDF")
        check = subprocess.run(
            [str(Path(sys.executable).with_name("dciodvfy")), str(path)],
            capture_output=True,
            text=True,
        )
        assert [x for x in check.stderr.splitlines() if x.startswith("Error")] == [], check.stderr

    # 9. Turnaround, segment by segment, from the server's own clock.
    stats = _get(service, f"/api/v1/stats/turnaround?case_id={cr_case['id']}", admin)
    segments = stats["segments"]
    for name in (
        "received_to_complete",
        "complete_to_routed",
        "routed_to_claimed",
        "claimed_to_escalated",
        "escalated_to_final",
        "final_to_delivered",
        "delivered_to_acknowledged",
        "received_to_acknowledged",
    ):
        assert segments[name]["cases"] == 1, name
        assert segments[name]["median_minutes"] >= 0, name
    assert segments["delivered_to_acknowledged"]["median_minutes"] > 0.04  # re-sent first

    # 10. Each step of the X-ray's case is an event on the server's clock, in order.
    view = _get(service, f"/api/v1/cases/{cr_case['id']}", admin)
    kinds = [e["kind"] for e in view["events"]]
    steps = [
        "received",
        "complete",
        "routed",
        "claimed",
        "preliminary",
        "escalated",
        "final",
        "delivered",
        "critical_resent",
        "critical_alert",
        "acknowledged",
    ]
    firsts: list[str] = []
    for kind in kinds:
        if kind in steps and kind not in firsts:
            firsts.append(kind)
    assert firsts == steps
    assert kinds.count("claimed") == 2  # the county reader, then the city reader
    assert "priority" in kinds  # the clinic's urgent reading request
    times = [e["at"] for e in view["events"]]
    assert times == sorted(times)
    assert all(t.endswith("Z") for t in times)
