"""DICOM peers prove who they are: dcmtk's storescu over DICOM TLS with a client certificate
(certificates made here with the openssl command), titles bound to addresses, one refusal
for every failed proof, and refused associations rate-limited per address."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import UID
from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from storage import qido
from storage.records import Destination
from teleradiology.core.errors import ConfigError
from teleradiology.core.network_file import parse_network
from teleradiology.core.report_sr import BASIC_TEXT_SR
from teleradiology.dimse.gate import client_context
from teleradiology.dimse.sender import c_store
from teleradiology.dimse.service import peer_rules
from teleradiology.roles import DICOM
from teleradiology.services import administration
from tests.factory import make_study
from tests.integration.conftest import Api, local_settings, serving
from tests.integration.test_dimse_qr import free_port

pytestmark = pytest.mark.dcmtk

#: What every refused association answers: rejected-permanent, service user, no reason.
REFUSED = (1, 1, 1)


@dataclass(frozen=True)
class Pki:
    """A network CA, the listener's certificate, and workstation certificates."""

    folder: Path

    def path(self, name: str) -> str:
        return str(self.folder / name)

    def fingerprint(self, name: str) -> str:
        printed = _openssl("x509", "-noout", "-fingerprint", "-sha256", "-in", self.path(name))
        return printed.strip().split("=", 1)[1]  # as an operator copies it: AB:CD:…


def _openssl(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(
        ["/usr/bin/openssl", *args], cwd=cwd, capture_output=True, text=True, check=True
    )
    return done.stdout


def _signed(folder: Path, name: str, subject: str, extensions: str, ca: str = "ca") -> None:
    (folder / f"{name}.ext").write_text(extensions)
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
        f"{name}.csr", "-subj", subject, cwd=folder,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
        "-CAcreateserial", "-days", "2", "-out", f"{name}.crt", "-extfile", f"{name}.ext",
        cwd=folder,
    )  # fmt: skip


def _self_signed(folder: Path, name: str, subject: str, *extra: str) -> None:
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
        f"{name}.crt", "-days", "2", "-subj", subject, *extra, cwd=folder,
    )  # fmt: skip


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    _self_signed(
        folder, "ca", "/CN=Huaibin network CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    _signed(
        folder, "server", "/CN=localhost",
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )  # fmt: skip
    for name in ("wd01", "other"):
        _signed(folder, name, f"/CN={name}", "extendedKeyUsage=clientAuth\n")
    _self_signed(folder, "rogue", "/CN=rogue")
    return Pki(folder)


def _bindings(pki: Pki) -> str:
    """HBXLWD01 must show its certificate; HBMJLW01 must call from 127.0.0.1."""
    return f"""
[[facility]]
code = "HB-XL-WD"
name = "淮滨县新里镇王店村卫生室"
tier = "village"
parent = "HB-XL"
ae_titles = ["HBXLWD01"]

[[facility.workstation]]
ae_title = "HBXLWD01"
certificate_sha256 = "{pki.fingerprint("wd01.crt")}"

[[facility]]
code = "HB-MJ-LW"
name = "淮滨县马集镇李湾村卫生室"
tier = "village"
parent = "HB-MJ"
ae_titles = ["HBMJLW01", "HBMJLW02"]

[[facility.workstation]]
ae_title = "HBMJLW01"
host = "127.0.0.1/32"
"""


@contextlib.asynccontextmanager
async def secured(
    database_url: str, tmp_path: Path, pki: Pki, **more: object
) -> AsyncIterator[Api]:
    settings = local_settings(
        database_url,
        tmp_path,
        dicom_tls_cert=Path(pki.path("server.crt")),
        dicom_tls_key=Path(pki.path("server.key")),
        dicom_tls_ca=Path(pki.path("ca.crt")),
        dicom_tls_port=0,
        **more,
    )
    async with serving(settings) as api:
        facilities, users = parse_network(_bindings(pki))
        await administration.import_network(api.pool, facilities, users)
        await api.app[DICOM].refresh_callers()
        yield api


@pytest.fixture
async def api(database_url: str, tmp_path: Path, pki: Pki) -> AsyncIterator[Api]:
    async with secured(database_url, tmp_path, pki) as served:
        yield served


async def storescu(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        "storescu", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    async with asyncio.timeout(60):
        out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode(errors="replace")


def _instance(tmp_path: Path, name: str = "ct.dcm") -> str:
    (data,) = make_study(count=1, patient_id="WD-9", size=16)
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


async def _stored_from(api: Api, ae_title: str) -> int:
    n: int = await api.pool.fetchval("select count(*) from instance where sender_ae = $1", ae_title)
    return n


async def test_storescu_with_its_client_certificate_is_accepted_over_tls(
    api: Api, pki: Pki, tmp_path: Path
) -> None:
    tls_port = str(api.app[DICOM].tls_port)
    ca = ["+cf", pki.path("ca.crt")]
    code, log = await storescu(
        "+tls", pki.path("wd01.key"), pki.path("wd01.crt"), *ca,
        "-aet", "HBXLWD01", "-aec", "TELEMED", "127.0.0.1", tls_port, _instance(tmp_path),
    )  # fmt: skip
    assert code == 0, log
    assert await _stored_from(api, "HBXLWD01") == 1

    # The same title with another certificate of the network's CA, or with none (anonymous
    # TLS), or over plain TCP: refused, nothing stored.
    attempts = [
        ["+tls", pki.path("other.key"), pki.path("other.crt"), *ca, "127.0.0.1", tls_port],
        ["+tla", *ca, "127.0.0.1", tls_port],
        ["127.0.0.1", str(api.app[DICOM].port)],
    ]
    for attempt in attempts:
        code, log = await storescu(
            "-aet", "HBXLWD01", "-aec", "TELEMED", *attempt, _instance(tmp_path, "b.dcm")
        )
        assert code != 0, log
        assert "Association Rejected" in log, log
        assert "Reason: 1 - No reason given" in log or "No Reason" in log, log
    # A certificate not of the network's CA does not get past the TLS handshake.
    code, log = await storescu(
        "+tls", pki.path("rogue.key"), pki.path("rogue.crt"), *ca,
        "-aet", "HBXLWD01", "-aec", "TELEMED", "127.0.0.1", tls_port, _instance(tmp_path, "c.dcm"),
    )  # fmt: skip
    assert code != 0, log
    assert "Association Rejected" not in log
    assert await _stored_from(api, "HBXLWD01") == 1


def _associate(
    port: int, calling: str, *, source: str = "127.0.0.1"
) -> tuple[bool, tuple[int, int, int] | None]:
    """Associate as ``calling`` from ``source``: whether accepted, and the reject's
    (result, source, reason) when refused."""
    ae = AE(ae_title=calling)
    ae.acse_timeout = ae.network_timeout = 10
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", port, ae_title="TELEMED", bind_address=(source, 0))
    if assoc.is_established:
        assert assoc.send_c_echo().Status == 0
        assoc.release()
        return True, None
    primitive = assoc.acceptor.primitive
    if primitive is None or primitive.result is None:
        return False, None
    why = (primitive.result, primitive.result_source, primitive.diagnostic)
    return False, tuple(int(n or 0) for n in why)  # type: ignore[return-value]


async def test_a_title_bound_to_an_address_is_refused_from_another(api: Api) -> None:
    port = api.app[DICOM].port
    assert await asyncio.to_thread(_associate, port, "HBMJLW01") == (True, None)
    assert await asyncio.to_thread(_associate, port, "HBMJLW01", source="127.0.0.2") == (
        False,
        REFUSED,
    )


async def test_every_refusal_is_the_same_and_guessed_titles_stay_out_of_the_log(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    port = api.app[DICOM].port
    caplog.set_level(logging.INFO)
    refusals = [
        await asyncio.to_thread(_associate, port, "GUESSED01", source="127.0.0.4"),  # unknown
        await asyncio.to_thread(_associate, port, "HBMJLW01", source="127.0.0.4"),  # address
        await asyncio.to_thread(_associate, port, "HBXLWD01", source="127.0.0.4"),  # no cert
    ]
    assert refusals == [(False, REFUSED)] * 3
    metrics = await (await api.client.get("/metrics")).text()
    for reason in ("unknown_title", "wrong_address", "no_certificate"):
        assert f'telemed_dicom_refusals_total{{reason="{reason}"}}' in metrics
    info = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert not [m for m in info if "GUESSED01" in m], info
    # A known title's failed proof is named for the operator, with what failed.
    assert any("HBXLWD01" in m and "certificate" in m for m in info), info
    assert any("HBMJLW01" in m and "address" in m for m in info), info


async def test_refused_associations_are_rate_limited_per_address(
    database_url: str, tmp_path: Path, pki: Pki
) -> None:
    async with secured(
        database_url, tmp_path, pki, dicom_refusals=3, dicom_refusal_block_s=2.0
    ) as api:
        port = api.app[DICOM].port
        guesser = "127.0.0.3"
        for n in range(3):
            refused = await asyncio.to_thread(_associate, port, f"GUESS{n}", source=guesser)
            assert refused == (False, REFUSED)
        # Blocked: even the right title from that address is refused, the same way...
        blocked = await asyncio.to_thread(_associate, port, "HBMJLW02", source=guesser)
        assert blocked == (False, REFUSED)
        # ...while other addresses are not concerned.
        assert await asyncio.to_thread(_associate, port, "HBMJLW01") == (True, None)
        # The block ends: an honest peer behind that address gets in again.
        await asyncio.sleep(2.1)
        assert await asyncio.to_thread(_associate, port, "HBMJLW02", source=guesser) == (
            True,
            None,
        )


async def test_report_copies_go_over_tls_to_a_destination_configured_for_it(
    pki: Pki, tmp_path: Path
) -> None:
    """c_store to dcmtk's storescp with TLS, which asks for our certificate."""
    port = free_port()
    received = tmp_path / "received"
    received.mkdir()
    storescp = await asyncio.create_subprocess_exec(
        "storescp", "+tls", pki.path("server.key"), pki.path("server.crt"),
        "+cf", pki.path("ca.crt"), "-od", str(received), str(port),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    try:
        await asyncio.sleep(0.5)
        data = _as_report_copy(make_study(count=1, patient_id="WD-9", size=16)[0])
        destination = Destination(ae_title="HBXLWD01", host="127.0.0.1", port=port, tls=True)
        ours = client_context(
            Path(pki.path("wd01.crt")), Path(pki.path("wd01.key")), Path(pki.path("ca.crt"))
        )
        await asyncio.to_thread(c_store, data, destination, calling_ae="TELEMED", tls=ours)
        assert len(list(received.iterdir())) == 1
        # Without TLS configured here, a TLS destination is not sent to in the clear.
        with pytest.raises(ConnectionError, match="TLS"):
            await asyncio.to_thread(c_store, data, destination, calling_ae="TELEMED")
        # A destination whose certificate our CA did not sign is not sent to.
        stranger = client_context(None, None, Path(pki.path("rogue.crt")))
        with pytest.raises(ConnectionError, match="refused"):
            await asyncio.to_thread(c_store, data, destination, calling_ae="TELEMED", tls=stranger)
    finally:
        storescp.terminate()
        await storescp.wait()


def _as_report_copy(data: bytes) -> bytes:
    """An instance under the SOP class report copies go as (what the sender proposes)."""
    ds = pydicom.dcmread(io.BytesIO(data))
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = UID(BASIC_TEXT_SR)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


async def test_dicom_nodes_file_binds_a_viewer_to_where_it_calls_from(
    api: Api, tmp_path: Path
) -> None:
    nodes = tmp_path / "nodes.toml"
    fingerprint = ":".join(["0A"] * 32)
    nodes.write_text(
        f"""
[[dicom_node]]
ae_title = "WANGVIEW"
user = "wang.reader"
host = "127.0.0.1"
port = 11113
move_destination = true
peer_host = "127.0.0.2"
certificate_sha256 = "{fingerprint}"
""",
        "utf-8",
    )
    assert await administration.import_dicom_nodes(api.pool, nodes) == 1
    node = await qido.dicom_node(api.pool, "WANGVIEW")
    assert node is not None
    assert (node.peer_host, node.cert_sha256) == ("127.0.0.2", "0a" * 32)
    rules = {r.ae_title: r for r in await peer_rules(api.pool)}
    assert [str(n) for n in rules["WANGVIEW"].networks] == ["127.0.0.2/32"]
    assert rules["WANGVIEW"].certificates == {"0a" * 32}
    # Without the certificate (plain TCP), from its own address or not: refused.
    await api.app[DICOM].refresh_callers()
    port = api.app[DICOM].port
    for source in ("127.0.0.2", "127.0.0.1"):
        refused = await asyncio.to_thread(_associate, port, "WANGVIEW", source=source)
        assert refused == (False, REFUSED)

    nodes.write_text(
        '[[dicom_node]]\nae_title = "WANGVIEW"\nuser = "wang.reader"\npeer_host = "10.0.0.0/8"\n'
        'certificate_sha256 = "nope"\n',
        "utf-8",
    )
    with pytest.raises(ConfigError, match=r"WANGVIEW.*64 hex digits"):
        await administration.import_dicom_nodes(api.pool, nodes)
