"""``telemed forward --ecg-folder``: a village's ECG cart exports into a folder, the node sends
each new file once to ``telemed serve``, through its own restart, a damaged file and an outage
of the county server. What reached the server is counted by the server itself (``/metrics``:
the ECG uploads it answered; the clinic's studies and refused files)."""

from __future__ import annotations

import io
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pypdf
import pytest

from tests.e2e.conftest import FAST
from tests.e2e.harness import (
    DEMO_NETWORK,
    REPO,
    Service,
    free_port,
    http,
    running_service,
    service_env,
    telemed,
    wait_for,
)
from tests.ecg_file import FORMATS

PHILIPS = FORMATS / "philips_xml"
#: Seconds an ECG file must stay unchanged: short for the test (the default is 5).
SETTLE_S = "1"


@contextmanager
def forwarding(env: dict[str, str], spool: Path, folder: Path, log: Path) -> Iterator[Path]:
    """``telemed forward`` watching ``folder`` (no DICOM listener), stopped by SIGTERM
    after the block; its log is ``log`` (appended to across restarts)."""
    offset = log.stat().st_size if log.exists() else 0
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "teleradiology", "forward", "--server", env["SERVER"],
             "--spool", str(spool), "--ecg-folder", str(folder), "--ecg-settle", SETTLE_S],
            env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        # this start's own lines: it has started (and stops on SIGTERM) after its last one
        def started() -> bool:
            text = log.read_bytes()[offset:].decode("utf-8", errors="replace")
            return "watching the ECG folder" in text and "forwarding TELEMED to" in text

        wait_for(started, timeout_s=60)
        yield log
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=20)
    assert code == 0, log.read_text("utf-8")


def ecg_posts(service: Service) -> int:
    """The ECG uploads this server process answered, whatever the answer."""
    _, _, text = http("GET", f"{service.base_url}/metrics")
    found = re.findall(
        r'telemed_http_requests_total\{(?=[^}]*route="/api/v1/ecg")(?=[^}]*method="POST")'
        r"[^}]*\} ([0-9.]+)",
        text,
    )
    return int(sum(float(n) for n in found))


def studies(service: Service, token: str) -> int:
    _, _, body = http("GET", f"{service.base_url}/api/v1/studies", token=token)
    return len(body["studies"])


def refused(service: Service, token: str) -> list[dict[str, object]]:
    _, _, body = http("GET", f"{service.base_url}/api/v1/refused-ecgs", token=token)
    return list(body["refused"])


def ledger(spool: Path) -> dict[str, str]:
    with sqlite3.connect(spool / "ecg.sqlite") as db:
        return {Path(p).name: s for p, s in db.execute("select path, state from ecg_file")}


def drop_renamed(target: Path, data: bytes) -> None:
    """As most carts export: written under a temporary name, then renamed."""
    temporary = target.with_name(f".{target.name}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, target)


def write_slowly(target: Path, data: bytes, *, pieces: int = 6, pause_s: float = 0.5) -> None:
    """As a cart writing in place over a slow SD card: the file grows for a few seconds."""
    step = len(data) // pieces + 1
    with target.open("wb") as f:
        for start in range(0, len(data), step):
            f.write(data[start : start + step])
            f.flush()
            time.sleep(pause_s)


def report_goes_home_with_its_tracing(service: Service, clinic: str) -> None:
    """The township's ECG reader signs one; the worker's PDF has the sheet on page 2."""
    reader = service.token("xl.ecg")
    _, _, listed = http("GET", f"{service.base_url}/api/v1/worklist", token=reader)
    case = listed["cases"][0]["id"]
    cases = f"{service.base_url}/api/v1/cases/{case}"
    assert http("POST", f"{cases}/claim", token=reader)[0] == 200
    report = {"findings": "窦性心律。", "impression": "正常心电图。", "conclusion": "normal"}
    assert http("POST", f"{cases}/report", token=reader, body=report)[0] in (200, 201)

    def delivered() -> list[dict[str, object]]:
        _, _, body = http("GET", f"{service.base_url}/api/v1/reports", token=clinic)
        return list(body["reports"])

    (home,) = wait_for(delivered, timeout_s=60)
    pdf = urllib.request.Request(
        f"{service.base_url}/api/v1/reports/{home['id']}/pdf",
        headers={"Authorization": f"Bearer {clinic}"},
    )
    with urllib.request.urlopen(pdf, timeout=30) as response:
        pages = pypdf.PdfReader(io.BytesIO(response.read())).pages
    assert len(pages) == 2
    assert float(pages[1].mediabox.width) > float(pages[1].mediabox.height)
    assert len(pages[1].images) == 1


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    env = service_env(database_url=database_url, storage_url=None, data_dir=tmp_path / "var")
    telemed("network", "import", str(DEMO_NETWORK), env=env)
    return env


def test_a_carts_folder_is_sent_once_through_restarts_damaged_files_and_outages(
    env: dict[str, str], tmp_path: Path
) -> None:
    folder, spool, log = tmp_path / "cart-export", tmp_path / "spool", tmp_path / "forward.log"
    folder.mkdir()
    port = free_port()
    with running_service(env, *FAST, http_port=port) as service:
        clinic = service.token("xlwd.clinic")
        node = {**env, "TELEMED_TOKEN": clinic, "SERVER": service.base_url}
        with forwarding(node, spool, folder, log):
            # two ECGs dropped while it runs: one renamed into place, one growing in place
            drop_renamed(folder / "a.xml", (PHILIPS / "129DYPRG_v1.03.XML").read_bytes())
            write_slowly(
                folder / "b.xml", (PHILIPS / "2020-5-18_15-48-11_v1.04.01.xml").read_bytes()
            )
            wait_for(lambda: studies(service, clinic) == 2, timeout_s=30)
            assert refused(service, clinic) == []  # nothing half-written went
            assert ecg_posts(service) == 2

            # a damaged file: refused once, set aside with the reason, not tried again
            damaged = (PHILIPS / "3191723_ZZDEMOPTONLY_v1.04.xml").read_bytes()[:4000]
            drop_renamed(folder / "c.xml", damaged)
            note = wait_for(lambda: list((spool / "ecg-refused").glob("*-c.xml.txt")))[0]
            assert "HTTP 400" in note.read_text("utf-8")
            assert (spool / "ecg-refused" / note.name.removesuffix(".txt")).read_bytes() == damaged
            assert len(refused(service, clinic)) == 1

            # the same ECG exported again under another name: the server's 200 is done
            (folder / "a-again.xml").write_bytes((folder / "a.xml").read_bytes())
            wait_for(lambda: ledger(spool).get("a-again.xml") == "sent", timeout_s=20)
            time.sleep(5)  # two more looks at the folder
            assert ecg_posts(service) == 4
            assert studies(service, clinic) == 2
        assert ledger(spool) == {
            "a.xml": "sent",
            "b.xml": "sent",
            "c.xml": "refused",
            "a-again.xml": "sent",
        }

        # the node restarts: nothing is sent again
        with forwarding(node, spool, folder, log):
            time.sleep(6)
            assert ecg_posts(service) == 4
            assert len(refused(service, clinic)) == 1

    # the county server is away: a new ECG waits, and goes when the server is back
    with forwarding(node, spool, folder, log):
        drop_renamed(folder / "d.xml", (PHILIPS / "3191723_ZZDEMOPTONLY_v1.04.xml").read_bytes())
        wait_for(lambda: "county server unreachable" in log.read_text("utf-8"), timeout_s=30)
        assert ledger(spool).get("d.xml") is None
        with running_service(env, *FAST, http_port=port) as back:
            wait_for(lambda: studies(back, clinic) == 3, timeout_s=60)
            assert ecg_posts(back) == 1
            assert ledger(spool)["d.xml"] == "sent"
            report_goes_home_with_its_tracing(back, clinic)
    assert "a.xml" not in log.read_text("utf-8")  # no file names (patients' names) logged
