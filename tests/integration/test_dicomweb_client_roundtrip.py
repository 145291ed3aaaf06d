"""Round trips with dicomweb-client over pydicom's bundled test files (every transfer syntax
pydicom ships: RLE, JPEG, JPEG 2000, JPEG-LS, implicit VR, big endian, RGB, multi-frame).

Stored means "as received, with the 128-byte preamble zeroed" (DESIGN.md): retrieved files
are compared byte for byte with what was sent after that preamble.
"""

from __future__ import annotations

import asyncio
import io
import warnings
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pydicom
from dicomweb_client.api import DICOMwebClient
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from storage.records import ReceivedVia
from teleradiology.core.errors import InvalidDicom
from teleradiology.http.context import INGESTOR
from tests.integration.conftest import Api
from tests.integration.dicomweb_support import facility, route_all

READER = "wang.reader"


def pydicom_samples() -> list[bytes]:
    """Every readable bundled test file with an image or data set, re-UIDed to be unique."""
    from pydicom.data import get_testdata_files

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        paths = sorted(set(get_testdata_files("*.dcm")))
    samples = []
    study = generate_uid()
    for path in paths:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(path)
                if "SOPClassUID" not in ds or "TransferSyntaxUID" not in ds.file_meta:
                    continue
                ds.StudyInstanceUID = study
                ds.SeriesInstanceUID = generate_uid()
                ds.SOPInstanceUID = generate_uid()
                ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
                ds.PatientID = "PYDICOM"
                buffer = io.BytesIO()
                ds.save_as(buffer, enforce_file_format=True)
                ds.to_json_dict()  # badVR.dcm (IS '1A') is stored, but has no JSON to compare
        except Exception:  # noqa: S112 - a sample pydicom itself cannot rewrite is skipped
            continue
        samples.append(buffer.getvalue())
    return samples


def _parts(body: bytes, content_type: str) -> list[bytes]:
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    payloads = [part.get_payload(decode=True) for part in message.iter_parts()]
    return [p for p in payloads if isinstance(p, bytes)]


def _comparable(ds: Dataset) -> dict[str, Any] | None:
    """What pydicom reads, as DICOM JSON; None when pydicom cannot write it as JSON."""

    def bulk(element: Any) -> str:
        return "BULK"

    try:
        return ds.to_json_dict(bulk_data_threshold=1024, bulk_data_element_handler=bulk)
    except ValueError:  # e.g. an IS value of '1A': "what pydicom reads" has no JSON form
        return None


async def test_every_sample_round_trips_byte_identical_with_matching_metadata(api: Api) -> None:
    sender = await facility(api, "HB-XL-WD")
    stored: dict[str, bytes] = {}
    refused = 0
    for data in pydicom_samples():
        try:
            result = await api.app[INGESTOR].ingest(data, facility=sender, via=ReceivedVia.STOW)
        except InvalidDicom:
            refused += 1
            continue
        stored[result.sop_instance_uid] = data
    assert len(stored) >= 40, f"only {len(stored)} samples stored ({refused} refused)"
    study_uid = pydicom.dcmread(io.BytesIO(next(iter(stored.values())))).StudyInstanceUID
    await route_all(api)

    url = str(api.client.make_url("/dicomweb"))
    client = DICOMwebClient(url, headers=api.auth(READER))
    found = await asyncio.to_thread(client.search_for_instances, study_uid, get_remaining=True)
    assert {i["00080018"]["Value"][0] for i in found} == set(stored)

    # Byte-identical after the preamble, in one whole-study retrieve, as stored.
    response = await api.client.get(
        f"/dicomweb/studies/{study_uid}",
        headers={
            **api.auth(READER),
            "Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*',
        },
    )
    assert response.status == 200
    parts = _parts(await response.read(), response.headers["Content-Type"])
    assert len(parts) == len(stored)
    for part in parts:
        sop = pydicom.dcmread(io.BytesIO(part), stop_before_pixels=True).SOPInstanceUID
        sent = stored[sop]
        assert part[128:] == sent[128:], sop
        assert part[:128] == bytes(128)

    # dicomweb-client: each instance and its metadata, against what pydicom reads.
    for item in found:
        series_uid = item["0020000E"]["Value"][0]
        sop = item["00080018"]["Value"][0]
        original = pydicom.dcmread(io.BytesIO(stored[sop]))
        retrieved = await asyncio.to_thread(
            client.retrieve_instance,
            study_uid,
            series_uid,
            sop,
            media_types=(("application/dicom", "*"),),
        )
        assert retrieved == original, sop
        metadata = await asyncio.to_thread(
            client.retrieve_instance_metadata, study_uid, series_uid, sop
        )
        expected = _comparable(original)
        if expected is None:
            assert metadata, sop  # served, minus the values JSON cannot carry
            continue
        _same(metadata, expected, f"/dicomweb/studies/{study_uid}/series/")


def _same(actual: Any, expected: Any, bulk_prefix: str) -> None:
    """DICOM JSON equal, where every bulk value is a BulkDataURI under the public base.

    dicomweb-client sends "Host: 127.0.0.1" without the port (its own quirk), so the absolute
    URI names that host; its path is what must be right.
    """
    if isinstance(expected, dict) and expected.get("BulkDataURI") == "BULK":
        uri = urlsplit(actual["BulkDataURI"])
        assert uri.scheme == "http"
        assert uri.path.startswith(bulk_prefix), uri
        assert actual["vr"] == expected["vr"]
    elif isinstance(expected, dict):
        assert set(actual) == set(expected)
        for key, value in expected.items():
            _same(actual[key], value, bulk_prefix)
    elif isinstance(expected, list):
        assert len(actual) == len(expected)
        for got, want in zip(actual, expected, strict=True):
            _same(got, want, bulk_prefix)
    else:
        assert actual == expected


async def test_bulk_data_uris_resolve_to_the_values(api: Api) -> None:
    sender = await facility(api, "HB-XL-WD")
    path = Path(pydicom.data.get_testdata_file("CT_small.dcm"))  # type: ignore[arg-type]
    ds = pydicom.dcmread(path)
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    await api.app[INGESTOR].ingest(buffer.getvalue(), facility=sender, via=ReceivedVia.STOW)
    client = DICOMwebClient(str(api.client.make_url("/dicomweb")), headers=api.auth("xlwd.clinic"))
    metadata = await asyncio.to_thread(
        client.retrieve_instance_metadata,
        ds.StudyInstanceUID,
        ds.SeriesInstanceUID,
        ds.SOPInstanceUID,
    )
    uri = urlsplit(metadata["7FE00010"]["BulkDataURI"])
    value = await asyncio.to_thread(client.retrieve_bulkdata, str(api.client.make_url(uri.path)))
    assert value == [ds.PixelData]


COMPRESSED = {
    "RLE": "1.2.840.10008.1.2.5",
    "JPEG-LS": "1.2.840.10008.1.2.4.80",
    "JPEG 2000": "1.2.840.10008.1.2.4.90",
    "JPEG baseline": "1.2.840.10008.1.2.4.50",
    "big endian": "1.2.840.10008.1.2.2",
    "implicit VR": "1.2.840.10008.1.2",
}


async def test_compressed_samples_decode_to_frames_rendered_images_and_explicit_le(
    api: Api,
) -> None:
    """One sample per stored transfer syntax: decoded frames equal pydicom's pixels, a JPEG
    rendering comes back, and a retrieve asking for Explicit VR Little Endian gets it."""
    sender = await facility(api, "HB-XL-WD")
    chosen: dict[str, bytes] = {}
    for data in pydicom_samples():
        ds = pydicom.dcmread(io.BytesIO(data))
        ts = str(ds.file_meta.TransferSyntaxUID)
        if ts in COMPRESSED.values() and ts not in chosen and "PixelData" in ds:
            try:
                ds.pixel_array  # noqa: B018 - only samples pydicom itself decodes
            except Exception:  # noqa: S112
                continue
            chosen[ts] = data
    assert set(chosen) == set(COMPRESSED.values())
    for data in chosen.values():
        await api.app[INGESTOR].ingest(data, facility=sender, via=ReceivedVia.STOW)
    auth = api.auth("xlwd.clinic")
    for name, ts in COMPRESSED.items():
        original = pydicom.dcmread(io.BytesIO(chosen[ts]))
        path = (
            f"/dicomweb/studies/{original.StudyInstanceUID}/series/"
            f"{original.SeriesInstanceUID}/instances/{original.SOPInstanceUID}"
        )
        frames = await api.client.get(
            f"{path}/frames/1",
            headers={**auth, "Accept": "multipart/related; type=application/octet-stream"},
        )
        assert frames.status == 200, name
        (frame,) = _parts(await frames.read(), frames.headers["Content-Type"])
        expected = pydicom.pixels.pixel_array(original, index=0)
        assert frame == expected.astype(expected.dtype.newbyteorder("<")).tobytes(), name
        rendered = await api.client.get(f"{path}/rendered", headers=auth)
        assert rendered.status == 200, name
        assert (await rendered.read())[:2] == b"\xff\xd8", name
        explicit = await api.client.get(
            path,
            headers={
                **auth,
                "Accept": 'multipart/related; type="application/dicom"; '
                "transfer-syntax=1.2.840.10008.1.2.1",
            },
        )
        assert explicit.status == 200, name
        (part,) = _parts(await explicit.read(), explicit.headers["Content-Type"])
        converted = pydicom.dcmread(io.BytesIO(part))
        assert converted.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1", name
        assert (converted.pixel_array == original.pixel_array).all(), name
