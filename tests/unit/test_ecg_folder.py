"""Which files of a cart's ECG export folder are complete and new: temporary names passed
over, a growing file waited for, a WFDB header with its signal file, the ledger's memory."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from teleradiology.node.ecg_folder import EcgFolder, FileState
from teleradiology.node.forwarder import ForwarderSettings

SETTLE_S = 0.05


def _aged(path: Path, data: bytes, age_s: float = 60.0) -> Path:
    path.write_bytes(data)
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def _names(folder: EcgFolder) -> list[str]:
    return sorted(f.path.name for f in folder.complete_files())


@pytest.fixture
def cart(tmp_path: Path) -> Iterator[EcgFolder]:
    (tmp_path / "export").mkdir()
    folder = EcgFolder(
        tmp_path / "export", tmp_path / "spool", settle_s=SETTLE_S, urgency="routine"
    )
    yield folder
    folder.close()


def test_a_file_is_complete_once_it_stopped_changing_and_temporaries_are_passed_over(
    cart: EcgFolder,
) -> None:
    export = cart.folder
    _aged(export / "a.xml", b"<ecg/>")
    for name in (".a.xml.tmp", "b.xml.part", "c.tmp", "~d.scp", "e.scp~", "empty.xml"):
        _aged(export / name, b"" if name == "empty.xml" else b"x")
    assert _names(cart) == []  # first look: not yet seen unchanged
    time.sleep(SETTLE_S * 2)
    assert _names(cart) == ["a.xml"]


def test_a_growing_file_waits_and_a_fresh_one_waits_for_its_quiet_time(cart: EcgFolder) -> None:
    growing = _aged(cart.folder / "g.scp", b"first half")
    assert _names(cart) == []
    time.sleep(SETTLE_S * 2)
    _aged(growing, b"first half, second half")
    assert _names(cart) == []  # it changed since the last look
    time.sleep(SETTLE_S * 2)
    assert _names(cart) == ["g.scp"]
    # just written (its time is the cart's now): it waits for its quiet time as well
    _aged(cart.folder / "fresh.scp", b"just written", age_s=-60.0)
    cart.complete_files()
    time.sleep(SETTLE_S * 2)
    assert "fresh.scp" not in _names(cart)


def test_a_wfdb_record_goes_as_its_header_with_its_signal_file(cart: EcgFolder) -> None:
    _aged(cart.folder / "r100.hea", b"r100 2 360 650000\n")
    _aged(cart.folder / "r100.dat", b"\x00" * 64)
    _aged(cart.folder / "lone.dat", b"\x01" * 8)
    cart.complete_files()
    time.sleep(SETTLE_S * 2)
    found = {f.path.name: f for f in cart.complete_files()}
    assert sorted(found) == ["lone.dat", "r100.hea"]
    assert [p.name for p in found["r100.hea"].related] == ["r100.dat"]
    assert found["r100.hea"].size_bytes == 18 + 64
    assert [name for name, _ in found["r100.hea"].read()] == ["r100.hea", "r100.dat"]


def test_the_ledger_remembers_across_restarts_and_a_changed_file_is_new(
    cart: EcgFolder, tmp_path: Path
) -> None:
    sent = _aged(cart.folder / "a.xml", b"<ecg>1</ecg>")
    cart.complete_files()
    time.sleep(SETTLE_S * 2)
    (found,) = cart.complete_files()
    cart.ledger.record(found, FileState.SENT, "1.2.3")
    cart.close()
    again = EcgFolder(cart.folder, tmp_path / "spool", settle_s=SETTLE_S, urgency="routine")
    try:
        os.utime(sent, (time.time() - 30, time.time() - 30))  # touched, same content
        again.complete_files()
        time.sleep(SETTLE_S * 2)
        assert again.complete_files() == []
        assert again.ledger.counts() == {"sent": 1}
        _aged(sent, b"<ecg>2</ecg>")  # rewritten by the cart: another ECG
        again.complete_files()
        time.sleep(SETTLE_S * 2)
        assert [f.path.name for f in again.complete_files()] == ["a.xml"]
    finally:
        again.close()


def test_a_forwarder_needs_an_ae_to_accept_or_an_existing_ecg_folder(tmp_path: Path) -> None:
    def settings(ecg_folder: Path | None) -> ForwarderSettings:
        return ForwarderSettings(
            spool_dir=tmp_path,
            server_url="http://127.0.0.1:1",
            token="t",
            accept_ae=(),
            ecg_folder=ecg_folder,
        )

    with pytest.raises(ValueError, match=r"--accept-ae.*--ecg-folder"):
        settings(None)
    with pytest.raises(ValueError, match="no such folder"):
        settings(tmp_path / "missing")
    assert settings(tmp_path).ecg_folder == tmp_path
