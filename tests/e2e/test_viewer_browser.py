"""A county reader opens a village CT in the OHIF viewer, in Debian's chromium.

The service runs as a subprocess (``telemed serve``); a 120-slice 512x512 CT of 王^小明 arrives
by STOW-RS from 王店村, is routed to the county pool, and the reader signs in, finds it in
the worklist, opens it with one link, sees the first image and scrolls to the last. The
screenshot is kept in ``test-artifacts/``.
"""

from __future__ import annotations

import io
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage, generate_uid

from teleradiology.http.web.viewer import viewer_dir
from tests.e2e.harness import (
    DEMO_NETWORK,
    REPO,
    Service,
    http,
    running_service,
    service_env,
    telemed,
    wait_for,
)
from tests.factory import to_part10

SLICES = 120
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--enable-unsafe-swiftshader",
    "--disable-dev-shm-usage",
]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="the chromium Debian package is not installed (make system-deps)"
)


def phantom_ct(slices: int) -> list[bytes]:
    """A CT of a water cylinder with a bone ring whose size changes along the axis."""
    study, series = generate_uid(), generate_uid()
    frame_of_reference = generate_uid()
    y, x = np.mgrid[0:512, 0:512]
    radius = np.hypot(x - 256, y - 256)
    out = []
    for number in range(1, slices + 1):
        bone = 150 + 60 * np.sin(number / slices * np.pi)
        hu = np.full((512, 512), -1000, dtype=np.int16)
        hu[radius < bone + 30] = 40
        hu[(radius >= bone) & (radius < bone + 12)] = 900
        hu[(np.abs(x - 256) < 20) & (np.abs(y - 200 - number) < 20)] = 300
        ds = Dataset()
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = generate_uid()
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = series
        ds.FrameOfReferenceUID = frame_of_reference
        ds.PatientID = "WD-CT-1"
        ds.PatientName = "王^小明"
        ds.PatientBirthDate = "19580312"
        ds.PatientSex = "M"
        ds.StudyDate = "20261120"
        ds.StudyTime = "093000"
        ds.AccessionNumber = "WD20261120"
        ds.StudyDescription = "胸部平扫"
        ds.SeriesDescription = "CT 1mm"
        ds.Modality = "CT"
        ds.SeriesNumber = 2
        ds.InstanceNumber = number
        ds.ImagePositionPatient = [-179.2, -179.2, float(number)]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.PixelSpacing = [0.7, 0.7]
        ds.SliceThickness = 1.0
        ds.Rows = ds.Columns = 512
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.RescaleIntercept = 0
        ds.RescaleSlope = 1
        ds.WindowCenter = 40
        ds.WindowWidth = 400
        ds.PixelData = hu.tobytes()
        out.append(to_part10(ds))
    return out


def stow(service: Service, token: str, instances: list[bytes]) -> None:
    boundary = secrets.token_hex(8)
    body = io.BytesIO()
    for data in instances:
        body.write(f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode())
        body.write(data)
        body.write(b"\r\n")
    body.write(f"--{boundary}--\r\n".encode())
    status, _, answer = http(
        "POST",
        f"{service.base_url}/dicomweb/studies",
        token=token,
        data=body.getvalue(),
        headers={
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}'
        },
    )
    assert status == 200, answer


@pytest.fixture
def service(database_url: str, tmp_path: Path) -> Iterator[Service]:
    env = service_env(database_url=database_url, storage_url=None, data_dir=tmp_path / "var")
    telemed("network", "import", str(DEMO_NETWORK), env=env)
    with running_service(env, "--stable-age", "1", "--sweep-interval", "0.3") as running:
        yield running


def test_a_county_reader_opens_a_village_ct_in_the_viewer(service: Service) -> None:
    from playwright.sync_api import sync_playwright

    assert (viewer_dir() / "index.html").is_file(), "run 'make viewer' to fetch the OHIF bundle"
    ct = phantom_ct(SLICES)
    clinic = service.token("xlwd.clinic")
    for start in range(0, SLICES, 40):
        stow(service, clinic, ct[start : start + 40])
    reader = service.token("wang.reader")
    wait_for(
        lambda: http("GET", f"{service.base_url}/api/v1/worklist", token=reader)[2]["cases"],
        timeout_s=30,
    )
    ARTIFACTS.mkdir(exist_ok=True)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(
            service_workers="block", viewport={"width": 1280, "height": 900}, locale="zh-CN"
        )
        page = context.new_page()
        page.goto(f"{service.base_url}/login")
        page.fill("input[name=username]", "wang.reader")
        page.fill("input[name=password]", "demo-wang.reader")
        page.click("button[type=submit]")
        # The worklist (our study list) shows the Chinese name as the clinic typed it.
        patient = page.locator("td.patient").first
        patient.wait_for(timeout=10_000)
        assert patient.inner_text().strip() == "王 小明"
        page.screenshot(path=str(ARTIFACTS / "worklist.png"))

        started = time.monotonic()
        page.locator("a.open").first.click()
        page.wait_for_url(re.compile(r"/viewer\?StudyInstanceUIDs="))
        canvas = page.locator(".cornerstone-canvas, canvas").first
        canvas.wait_for(timeout=60_000)
        first_image = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            shot = canvas.screenshot()
            pixels = _decode(shot)
            if pixels.std() > 10:  # the phantom, not a uniform canvas
                first_image = time.monotonic() - started
                break
            time.sleep(0.25)
        page.screenshot(path=str(ARTIFACTS / "viewer-first-image.png"))
        assert first_image is not None, "the viewport stayed blank"

        # The viewer's patient panel shows the name too (OHIF: the first component group).
        page.get_by_text("Patient", exact=True).first.click()
        wait_for(lambda: "王" in page.locator("body").inner_text(), timeout_s=10)
        page.keyboard.press("Escape")

        # Scroll to the last slice: the overlay reads "(120/120)".
        canvas.hover()
        page.keyboard.press("End")
        if not _at_last(page):
            for _ in range(SLICES):
                page.mouse.wheel(0, 120)
                if _at_last(page):
                    break
        wait_for(lambda: _at_last(page), timeout_s=30)
        last = _decode(canvas.screenshot())
        page.screenshot(path=str(ARTIFACTS / "viewer-last-slice.png"))
        assert last.std() > 10
        browser.close()
    print(f"first image {first_image:.1f} s after the click")


def _at_last(page: object) -> bool:
    text: str = page.locator("body").inner_text()  # type: ignore[attr-defined]
    return f"({SLICES}/{SLICES})" in text


def _decode(png: bytes) -> np.ndarray:
    import cv2

    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert image is not None
    return image.astype(np.float64)
