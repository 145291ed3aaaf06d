"""QRS detection accuracy and speed on MIT-BIH, beside wfdb's XQRS and NeuroKit2.

Usage::

    .venv/bin/python bench/ecg_detection.py            # development records, all detectors
    .venv/bin/python bench/ecg_detection.py --heldout  # also score the held-out records
    .venv/bin/python bench/ecg_detection.py --ours-only
    .venv/bin/python bench/ecg_detection.py --ours-only --rates 250 125 100  # resampled

Reference: the beat annotations of ``.atr`` (beat symbols only); a detection within ±150 ms
of a reference beat is a true positive (each matched once); pooled over records.
The held-out records are only scored here, never used for tuning. Development records come
from tests/data/ecg where the repository has them, else from ../shared/data/ecg; held-out
records only from ../shared/data/ecg (bench/ecg_data.py). ``--rates`` also scores the
development records resampled (``scipy.signal.resample_poly``, which low-passes first as a
cart's decimation does) to each of the rates given, with the reference beats moved to the
same instants: how the detector fares on the 100-250 Hz recordings some carts store.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
import numpy.typing as npt
import wfdb
from scipy import signal as sps

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ecg_data import development_record, folders, held_out_folder
from ecg.detect import detect_r_peaks

BEAT_SYMBOLS = frozenset("NLRBAaJSVrFejnE/fQ?")
TOLERANCE_S = 0.150
DEV = ["100", "101", "105", "106", "108"]
HELDOUT = ["104", "113", "121", "200", "202", "208", "223", "231", "232"]
#: The files of a record that are read: header, signal, reference annotations.
FILES = (".hea", ".dat", ".atr")

IntArray = npt.NDArray[np.int64]
Detector = Callable[[npt.NDArray[np.float64], float], IntArray]


def match(reference: IntArray, detected: IntArray, tolerance: int) -> tuple[int, int, int]:
    """Greedy one-to-one matching in time order; returns (tp, fn, fp)."""
    tp = 0
    j = 0
    used = np.zeros(detected.size, dtype=bool)
    for r in reference:
        while j < detected.size and detected[j] < r - tolerance:
            j += 1
        best = -1
        best_d = tolerance + 1
        k = j
        while k < detected.size and detected[k] <= r + tolerance:
            if not used[k] and abs(int(detected[k]) - int(r)) < best_d:
                best, best_d = k, abs(int(detected[k]) - int(r))
            k += 1
        if best >= 0:
            used[best] = True
            tp += 1
    return tp, int(reference.size - tp), int(detected.size - tp)


def ours(signal_uv: npt.NDArray[np.float64], fs: float) -> IntArray:
    return detect_r_peaks(signal_uv, fs)


def ours_lead0(signal_uv: npt.NDArray[np.float64], fs: float) -> IntArray:
    return detect_r_peaks(signal_uv[0], fs)


def xqrs(signal_uv: npt.NDArray[np.float64], fs: float) -> IntArray:
    from wfdb import processing

    peaks = processing.xqrs_detect(sig=signal_uv[0] / 1000.0, fs=fs, verbose=False)
    return np.asarray(peaks, dtype=np.int64)


def neurokit(signal_uv: npt.NDArray[np.float64], fs: float) -> IntArray:
    import neurokit2 as nk

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, info = nk.ecg_peaks(
            nk.ecg_clean(signal_uv[0] / 1000.0, sampling_rate=int(fs)), sampling_rate=int(fs)
        )
    return np.asarray(info["ECG_R_Peaks"], dtype=np.int64)


def load(path: Path) -> tuple[npt.NDArray[np.float64], float, IntArray]:
    record = wfdb.rdrecord(str(path))
    annotation = wfdb.rdann(str(path), "atr")
    beats = np.array(
        [
            s
            for s, sym in zip(annotation.sample, annotation.symbol, strict=True)
            if sym in BEAT_SYMBOLS
        ],
        dtype=np.int64,
    )
    return record.p_signal.T * 1000.0, float(record.fs), beats


def resampled(
    record: tuple[npt.NDArray[np.float64], float, IntArray], rate_hz: float
) -> tuple[npt.NDArray[np.float64], float, IntArray]:
    """`record` (signal, rate, reference beats) resampled to `rate_hz`."""
    signal_uv, fs, beats = record
    ratio = Fraction(rate_hz / fs).limit_denominator(1000)
    out = sps.resample_poly(signal_uv, ratio.numerator, ratio.denominator, axis=1)
    moved = np.round(beats * rate_hz / fs).astype(np.int64)
    return out, rate_hz, moved[moved < out.shape[1]]


def score(
    paths: dict[str, Path], detectors: dict[str, Detector], rate_hz: float | None = None
) -> None:
    """Score `detectors` on the records `paths` names (record name: path without suffix),
    resampled to `rate_hz` if given."""
    records = list(paths)
    totals: dict[str, list[float]] = {name: [0, 0, 0, 0.0] for name in detectors}
    loaded = {name: load(path) for name, path in paths.items()}
    if rate_hz is not None:
        loaded = {name: resampled(record, rate_hz) for name, record in loaded.items()}
    header = (
        f"{'record':>7} {'detector':<18} {'beats':>6} {'TP':>6} {'FN':>5} {'FP':>5} "
        f"{'Se%':>7} {'+P%':>7}"
    )
    print(header)
    for rec in records:
        signal_uv, fs, beats = loaded[rec]
        tol = round(TOLERANCE_S * fs)
        for name, detector in detectors.items():
            start = time.perf_counter()
            peaks = detector(signal_uv, fs)
            seconds = time.perf_counter() - start
            tp, fn, fp = match(beats, peaks, tol)
            t = totals[name]
            t[0] += tp
            t[1] += fn
            t[2] += fp
            t[3] += seconds
            print(
                f"{rec:>7} {name:<18} {beats.size:>6} {tp:>6} {fn:>5} {fp:>5} "
                f"{100 * tp / max(1, tp + fn):7.2f} {100 * tp / max(1, tp + fp):7.2f}"
            )
    print(f"pooled over {', '.join(records)}:")
    for name, (tp_f, fn_f, fp_f, elapsed) in totals.items():
        tp, fn, fp = int(tp_f), int(fn_f), int(fp_f)
        se = tp / max(1, tp + fn)
        ppv = tp / max(1, tp + fp)
        f1 = 2 * se * ppv / max(1e-12, se + ppv)
        print(
            f"  {name:<18} TP {tp} FN {fn} FP {fp}  Se {100 * se:.2f}%  +P {100 * ppv:.2f}%  "
            f"F1 {100 * f1:.2f}%  time {elapsed:.2f} s"
        )


def speed() -> None:
    signal_uv, fs, _ = load(development_record("mitdb", "100", FILES))
    lead = signal_uv[0]
    duration_s = lead.size / fs
    detect_r_peaks(lead, fs)
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        detect_r_peaks(lead, fs)
        runs.append(time.perf_counter() - start)
    best = min(runs)
    print(
        f"speed: mitdb/100 lead 0, {duration_s:.0f} s at {fs:.0f} Hz: "
        f"detection {1000 * best:.1f} ms "
        f"(best of 5) = {duration_s / best:,.0f}x real time per lead"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--heldout", action="store_true", help="also score held-out records")
    parser.add_argument("--ours-only", action="store_true", help="skip XQRS and NeuroKit2")
    parser.add_argument("--records", nargs="*", help="development records to use")
    parser.add_argument(
        "--rates", nargs="*", type=float, default=[], help="also score dev records resampled"
    )
    args = parser.parse_args()
    detectors: dict[str, Detector] = {"ours (2 leads)": ours, "ours (lead 0)": ours_lead0}
    if not args.ours_only:
        detectors["wfdb xqrs (lead 0)"] = xqrs
        detectors["neurokit2 (lead 0)"] = neurokit
    records = args.records or DEV
    held_out = {name: held_out_folder("mitdb") / name for name in HELDOUT} if args.heldout else {}
    development = {name: development_record("mitdb", name, FILES) for name in records}
    print(
        f"data: {folders(list(development.values()))}, development records {records}, "
        f"tolerance ±{TOLERANCE_S * 1000:.0f} ms"
    )
    score(development, detectors)
    for rate in args.rates:
        print(f"\ndevelopment records resampled to {rate:g} Hz")
        score(development, detectors, rate)
    if held_out:
        print(f"\nheld-out records (scored only, never tuned on): {HELDOUT}")
        score(held_out, detectors)
    speed()


if __name__ == "__main__":
    main()
