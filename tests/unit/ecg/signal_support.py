"""Synthetic ECGs and real-record loaders for the signal-processing tests."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import wfdb

from ecg import STANDARD_LEADS, EcgFormat, EcgRecord
from tests.ecg_file import ECG_DATA

BEAT_SYMBOLS = frozenset("NLRBAaJSVrFejnE/fQ?")


def gaussian(t: npt.NDArray[np.float64], centre: float, width: float) -> npt.NDArray[np.float64]:
    result: npt.NDArray[np.float64] = np.exp(-0.5 * ((t - centre) / width) ** 2)
    return result


def synthetic_lead(
    *,
    fs: float = 500.0,
    duration_s: float = 10.0,
    rate_bpm: float = 72.0,
    r_uv: float = 1000.0,
    st_uv: float = 0.0,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """A sinus-like lead (P, QRS, T) and its R-peak samples; `st_uv` raises the ST segment."""
    t = np.arange(round(duration_s * fs)) / fs
    rr = 60.0 / rate_bpm
    beats = np.arange(0.4, duration_s - 0.6, rr)
    x = np.zeros_like(t)
    for b in beats:
        x += 0.12 * r_uv * gaussian(t, b - 0.16, 0.025)  # P
        x -= 0.1 * r_uv * gaussian(t, b - 0.03, 0.008)  # Q
        x += r_uv * gaussian(t, b, 0.010)  # R
        x -= 0.2 * r_uv * gaussian(t, b + 0.03, 0.008)  # S
        x += 0.3 * r_uv * gaussian(t, b + 0.28, 0.05)  # T
        if st_uv:
            x += st_uv * gaussian(t, b + 0.14, 0.06)
    return x, np.round(beats * fs).astype(np.int64)


def synthetic_record(
    *, st_uv: dict[str, float] | None = None, fs: float = 500.0, duration_s: float = 10.0
) -> EcgRecord:
    """A 12-lead record of synthetic sinus beats, with ST elevation in the leads given."""
    rows = []
    for i, name in enumerate(STANDARD_LEADS):
        lead, _ = synthetic_lead(
            fs=fs,
            duration_s=duration_s,
            r_uv=600.0 + 60.0 * i,
            st_uv=(st_uv or {}).get(name, 0.0),
        )
        rows.append(lead)
    return EcgRecord(
        leads=STANDARD_LEADS,
        samples_uv=np.vstack(rows),
        sampling_rate_hz=fs,
        source_format=EcgFormat.CSV,
    )


def load_mitdb(name: str) -> tuple[npt.NDArray[np.float64], float, npt.NDArray[np.int64]]:
    """A development MIT-BIH record: signal (µV, leads × samples), rate, reference beats."""
    path = str(ECG_DATA / "mitdb" / name)
    record = wfdb.rdrecord(path)
    annotation = wfdb.rdann(path, "atr")
    beats = np.array(
        [
            s
            for s, sym in zip(annotation.sample, annotation.symbol, strict=True)
            if sym in BEAT_SYMBOLS
        ],
        dtype=np.int64,
    )
    return record.p_signal.T * 1000.0, float(record.fs), beats


def match_beats(
    reference: npt.NDArray[np.int64], detected: npt.NDArray[np.int64], tolerance: int
) -> tuple[int, int, int]:
    """One-to-one matching within `tolerance` samples: (true pos., false neg., false pos.)."""
    used = np.zeros(detected.size, dtype=bool)
    tp = 0
    for r in reference:
        lo = np.searchsorted(detected, r - tolerance)
        hi = np.searchsorted(detected, r + tolerance, side="right")
        candidates = [k for k in range(lo, hi) if not used[k]]
        if candidates:
            best = min(candidates, key=lambda k: abs(int(detected[k]) - int(r)))
            used[best] = True
            tp += 1
    return tp, int(reference.size - tp), int(detected.size - tp)
