"""``telemed ecg analyze``: the public command outside checks call, on real files."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import wfdb

from teleradiology.ecg_cli import analyze
from tests.ecg_file import ECG_DATA, FORMATS
from tests.unit.ecg.scp_writer import paced_scp

MUSE = FORMATS / "ge_muse_xml" / "braveheart_example1.xml"
#: A development record (DEV_RECORDS.txt): its reference beats check the printed R peaks.
MITDB_100 = ECG_DATA / "mitdb" / "100.hea"
BEAT_SYMBOLS = set("NLRBAaJSVrFejnE/fQ?")


def _json_lines(paths: list[Path]) -> tuple[int, list[dict[str, object]]]:
    out = io.StringIO()
    code = analyze(paths, as_json=True, out=out)
    return code, [json.loads(line) for line in out.getvalue().splitlines()]


def test_json_line_per_file_with_measurements_peaks_and_beats() -> None:
    code, lines = _json_lines([MUSE, MITDB_100])
    assert code == 0
    assert [line["path"] for line in lines] == [str(MUSE), str(MITDB_100)]
    muse = lines[0]
    assert muse["sampling_rate_hz"] == 500.0
    assert muse["heart_rate_bpm"] == pytest.approx(48, abs=5)
    assert muse["qrs_ms"] is not None
    peaks = muse["r_peaks"]
    beats = muse["beats"]
    assert isinstance(peaks, list)
    assert isinstance(beats, list)
    assert len(beats) == len(peaks) > 5
    for r, beat in zip(peaks, beats, strict=True):
        assert set(beat) == {"p_on", "p_off", "qrs_on", "qrs_off", "t_peak", "t_off"}
        if beat["qrs_on"] is not None and beat["qrs_off"] is not None:
            assert beat["qrs_on"] <= r <= beat["qrs_off"]


def test_r_peaks_are_at_the_records_own_rate_and_match_the_reference_beats() -> None:
    code, [line] = _json_lines([MITDB_100])
    assert code == 0
    assert line["sampling_rate_hz"] == 360.0
    ours = np.array(line["r_peaks"])
    ann = wfdb.rdann(str(MITDB_100.with_suffix("")), "atr")
    reference = np.array(
        [s for s, sym in zip(ann.sample, ann.symbol, strict=True) if sym in BEAT_SYMBOLS]
    )
    tolerance = int(0.15 * 360)
    nearest = np.abs(ours[:, None] - reference[None, :]).min(axis=0)
    sensitivity = float(np.mean(nearest <= tolerance))
    assert sensitivity > 0.995
    assert abs(len(ours) - len(reference)) < 0.01 * len(reference)


def test_plain_output_names_the_measurements_and_statements() -> None:
    out = io.StringIO()
    assert analyze([MUSE], as_json=False, out=out) == 0
    text = out.getvalue()
    assert "ge_muse_xml, 12 leads, 500 Hz, 10.0 s" in text
    assert "QRS" in text
    assert "PR" in text
    assert "请确认" in text  # statements are worded for the reader to confirm


def test_an_unreadable_file_is_reported_and_the_exit_code_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "cart.xml"
    bad.write_bytes(b"<?xml version='1.0'?><Unknown/>")
    code, lines = _json_lines([bad, MUSE])
    assert code == 1
    assert lines[0]["path"] == str(bad)
    assert "not a supported ECG format" in str(lines[0]["error"])
    assert lines[1]["path"] == str(MUSE)
    assert "cart.xml" in capsys.readouterr().err


def test_the_command_line_entry_point() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "teleradiology", "ecg", "analyze", "--json", str(MUSE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    assert json.loads(line)["path"] == str(MUSE)


def test_json_line_carries_what_the_cart_wrote(tmp_path: Path) -> None:
    """The cart's statements, per-lead measurements and stimuli: a synthetic paced SCP-ECG
    file (sections 7, 8 and 10) and a Philips file's interpretation statements."""
    paced = tmp_path / "paced.scp"
    paced.write_bytes(paced_scp())
    philips = FORMATS / "philips_xml" / "2020-5-18_15-48-11_v1.04.01.xml"
    code, [scp, xml] = _json_lines([paced, philips])
    assert code == 0
    assert scp["device_statements"] == ["Atrial-sensed ventricular-paced rhythm"]
    assert scp["device_lead_measurements"] == {
        "V1": {"p_ms": 100.0, "pr_ms": 140.0, "qrs_ms": 90.0, "qt_ms": 380.0, "q_ms": 20.0,
               "r_ms": 40.0, "s_ms": 30.0, "q_uv": -120.0, "r_uv": 900.0, "s_uv": -300.0},
    }  # fmt: skip
    assert scp["device_pacemaker_spikes"] == [
        {"time_ms": 490.0, "sample": 245, "amplitude_uv": 1200.0, "pulse_width_us": 500.0,
         "triggers": "QRS"},
        {"time_ms": 1290.0, "sample": 645, "amplitude_uv": 900.0, "pulse_width_us": None,
         "triggers": "P"},
        {"time_ms": 2090.0, "sample": 1045, "amplitude_uv": 800.0, "pulse_width_us": None,
         "triggers": None},  # type 0: not said
    ]  # fmt: skip
    pacer_spikes = scp["pacer_spikes"]
    assert isinstance(pacer_spikes, list)
    assert {245, 645, 1045} <= set(pacer_spikes)
    assert xml["device_statements"] == [
        "Sinus rhythm", "Abnormal R-wave progression, early transition", "OTHERWISE NORMAL ECG"
    ]  # fmt: skip
