"""Wave delineation against the QT Database cardiologist annotations (``.q1c``).

Usage::

    .venv/bin/python bench/ecg_delineation.py             # development windows only
    .venv/bin/python bench/ecg_delineation.py --no-neurokit
    .venv/bin/python bench/ecg_delineation.py --heldout    # score the held-out windows

Each reference beat (a ``q1c`` QRS peak) is paired with the detector's beat whose R peak is
nearest (within 150 ms). For every boundary the reference marks, the detection rate is the
share of those beats where the detector gives that boundary too, and the error is
detector minus reference, in ms (mean, SD, median of the absolute error). References measured
by the same script: ecgpuwave's boundaries shipped with the database (``.pu``, lead 0) and
NeuroKit2's DWT delineator. Last, the median beat's global QT (earliest QRS onset to latest
T end, as the measurements report it) against the median of cardiologist 1's QT intervals
over the window's beats, one figure a window. Only the development windows of
DEV_RECORDS.txt are used, from tests/data/ecg where the repository has them, else from
../shared/data/ecg; the held-out windows only from ../shared/data/ecg (bench/ecg_data.py).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import wfdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ecg_data import development_record, development_records, folders, held_out_folder
from ecg.delineate import compute_median_beat, delineate_beats, delineate_median_beat
from ecg.detect import detect_r_peaks
from ecg.filters import clean_ecg

BOUNDARIES = ("p_on", "p_off", "qrs_on", "qrs_off", "t_peak", "t_off")
MATCH_S = 0.150
#: The files of a window that are read: header, signal, cardiologist 1, ecgpuwave.
FILES = (".hea", ".dat", ".q1c", ".pu")

Beat = dict[str, int | None]
Beats = tuple[npt.NDArray[np.int64], list[Beat]]  # R (or QRS peak) samples, fiducials
Delineator = Callable[[npt.NDArray[np.float64], float], Beats]


def dev_windows() -> list[str]:
    return development_records("qtdb")


def heldout_windows() -> list[str]:
    """The qtdb windows with cardiologist annotations that are not development windows:
    scored only, never looked at or tuned on."""
    dev = set(dev_windows())
    return sorted(p.stem for p in held_out_folder("qtdb").glob("*.q1c") if p.stem not in dev)


def parse_waves(sample: npt.NDArray[np.int64], symbol: list[str]) -> Beats:
    """Group WFDB wave annotations ``( p ) ( N ) t )`` into beats keyed by their QRS peak."""
    waves: list[tuple[str, int, int | None, int | None]] = []
    for i, sym in enumerate(symbol):
        if sym in ("p", "N", "t"):
            on = int(sample[i - 1]) if i > 0 and symbol[i - 1] == "(" else None
            off = int(sample[i + 1]) if i + 1 < len(symbol) and symbol[i + 1] == ")" else None
            waves.append((sym, int(sample[i]), on, off))
    peaks: list[int] = []
    beats: list[Beat] = []
    pending_p: tuple[int | None, int | None] | None = None
    for sym, peak, on, off in waves:
        if sym == "p":
            pending_p = (on, off)
        elif sym == "N":
            beat: Beat = dict.fromkeys(BOUNDARIES)
            beat["qrs_on"], beat["qrs_off"] = on, off
            if pending_p is not None:
                beat["p_on"], beat["p_off"] = pending_p
            pending_p = None
            peaks.append(peak)
            beats.append(beat)
        elif sym == "t" and beats and beats[-1]["t_peak"] is None:
            beats[-1]["t_peak"], beats[-1]["t_off"] = peak, off
    return np.asarray(peaks, dtype=np.int64), beats


def ours(signal_uv: npt.NDArray[np.float64], fs: float) -> Beats:
    clean = clean_ecg(signal_uv, fs)
    peaks = detect_r_peaks(clean, fs)
    return peaks, [b.to_dict() for b in delineate_beats(clean, fs, peaks)]


def neurokit(signal_uv: npt.NDArray[np.float64], fs: float) -> Beats:
    import neurokit2 as nk

    lead = signal_uv[0] / 1000.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clean = nk.ecg_clean(lead, sampling_rate=int(fs))
        _, info = nk.ecg_peaks(clean, sampling_rate=int(fs))
        peaks = np.asarray(info["ECG_R_Peaks"], dtype=np.int64)
        _, waves = nk.ecg_delineate(clean, peaks, sampling_rate=int(fs), method="dwt")
    keys = {
        "p_on": "ECG_P_Onsets",
        "p_off": "ECG_P_Offsets",
        "qrs_on": "ECG_R_Onsets",
        "qrs_off": "ECG_R_Offsets",
        "t_peak": "ECG_T_Peaks",
        "t_off": "ECG_T_Offsets",
    }
    beats: list[Beat] = []
    for k in range(peaks.size):
        beat: Beat = {}
        for name, key in keys.items():
            values = waves.get(key, [])
            value = values[k] if k < len(values) else np.nan
            beat[name] = None if value is None or not np.isfinite(value) else int(value)
        beats.append(beat)
    return peaks, beats


def median_qt(
    signal_uv: npt.NDArray[np.float64], fs: float, reference: Beats, errors: list[float]
) -> int:
    """Append our median beat's QT minus the median of the reference beats' QT intervals (ms)
    to `errors`; returns 1 if the reference marks a QT in this window, else 0."""
    qt = [b["t_off"] - b["qrs_on"] for b in reference[1] if b["t_off"] and b["qrs_on"]]
    if not qt:
        return 0
    clean = clean_ecg(signal_uv, fs)
    median = compute_median_beat(clean, fs, detect_r_peaks(clean, fs))
    fid = None if median is None else delineate_median_beat(median, fs)
    if fid is not None and fid.qrs_on is not None and fid.t_off is not None:
        errors.append((fid.t_off - fid.qrs_on - float(np.median(qt))) * 1000.0 / fs)
    return 1


def print_median_qt(errors: list[float], windows: int) -> None:
    e = np.asarray(errors)
    if e.size:
        print(
            f"median-beat QT, ours: {e.size}/{windows} windows, mean {e.mean():.1f} ms, "
            f"SD {e.std():.1f}, med|e| {np.median(np.abs(e)):.1f}, |e| > 20 ms: "
            f"{int((np.abs(e) > 20).sum())}"
        )


def score(
    reference: Beats,
    detected: Beats,
    fs: float,
    errors: dict[str, list[float]],
    counts: dict[str, list[int]],
) -> None:
    ref_peaks, ref_beats = reference
    det_peaks, det_beats = detected
    for peak, ref in zip(ref_peaks, ref_beats, strict=True):
        if det_peaks.size == 0:
            continue
        k = int(np.argmin(np.abs(det_peaks - peak)))
        matched = abs(int(det_peaks[k]) - int(peak)) <= MATCH_S * fs
        for name in BOUNDARIES:
            ref_value = ref[name]
            if ref_value is None:
                continue
            counts[name][1] += 1
            value = det_beats[k].get(name) if matched else None
            if value is not None:
                counts[name][0] += 1
                errors[name].append((value - ref_value) * 1000.0 / fs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-neurokit", action="store_true")
    parser.add_argument("--records", nargs="*")
    parser.add_argument(
        "--heldout", action="store_true", help="score the held-out windows instead (no tuning!)"
    )
    args = parser.parse_args()
    records = args.records or (heldout_windows() if args.heldout else dev_windows())
    kind = "held-out" if args.heldout else "development"
    if args.heldout:
        paths = [held_out_folder("qtdb") / name for name in records]
    else:
        paths = [development_record("qtdb", name, FILES) for name in records]
    methods = ["ours (2 leads)", "ecgpuwave .pu lead 0"]
    if not args.no_neurokit:
        methods.append("neurokit2 dwt (lead 0)")
    errors: dict[str, dict[str, list[float]]] = {m: {b: [] for b in BOUNDARIES} for m in methods}
    counts = {m: {b: [0, 0] for b in BOUNDARIES} for m in methods}
    elapsed = dict.fromkeys(methods, 0.0)
    qt_errors: list[float] = []
    qt_windows = 0
    print(f"data: {folders(paths)}, {len(records)} {kind} windows: {' '.join(records)}")
    for window in paths:
        path = str(window)
        record = wfdb.rdrecord(path)
        fs = float(record.fs)
        signal_uv = np.nan_to_num(record.p_signal.T * 1000.0)
        q1c = wfdb.rdann(path, "q1c")
        reference = parse_waves(q1c.sample, list(q1c.symbol))
        pu = wfdb.rdann(path, "pu")
        lead0 = pu.chan == 0
        pu_beats = parse_waves(
            pu.sample[lead0], [s for s, c in zip(pu.symbol, lead0, strict=True) if c]
        )
        qt_windows += median_qt(signal_uv, fs, reference, qt_errors)
        runs: dict[str, Delineator | Beats] = {
            "ours (2 leads)": ours,
            "ecgpuwave .pu lead 0": pu_beats,
        }
        if not args.no_neurokit:
            runs["neurokit2 dwt (lead 0)"] = neurokit
        for method, run in runs.items():
            start = time.perf_counter()
            detected = run(signal_uv, fs) if callable(run) else run
            elapsed[method] += time.perf_counter() - start
            score(reference, detected, fs, errors[method], counts[method])
    print(
        f"{'boundary':<8} {'method':<24} {'detected':>14} "
        f"{'mean ms':>8} {'SD ms':>7} {'med|e| ms':>9}"
    )
    for boundary in BOUNDARIES:
        for method in methods:
            e = np.asarray(errors[method][boundary])
            found, total = counts[method][boundary]
            if e.size:
                stats = f"{e.mean():8.1f} {e.std():7.1f} {np.median(np.abs(e)):9.1f}"
            else:
                stats = f"{'-':>8} {'-':>7} {'-':>9}"
            print(
                f"{boundary:<8} {method:<24} {found:>5}/{total:<5} "
                f"{100 * found / max(1, total):3.0f}% {stats}"
            )
    print_median_qt(qt_errors, qt_windows)
    for method, seconds in elapsed.items():
        print(f"time {method}: {seconds:.2f} s")


if __name__ == "__main__":
    main()
