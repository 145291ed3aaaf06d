"""The ECG analysis recipe: check, clean, detect, delineate, measure, state.

:func:`analyze_ecg` is the one entry point; each step is a public function of its own module
(:mod:`ecg.filters`, :mod:`ecg.detect`, :mod:`ecg.delineate`, :mod:`ecg.measure`,
:mod:`ecg.statements`), so each is tested on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from ecg.delineate import (
    BeatFiducials,
    compute_median_beat,
    delineate_beats,
    delineate_median_beat,
)
from ecg.detect import detect_r_peaks
from ecg.errors import EcgError
from ecg.filters import (
    MainsFrequency,
    clean_ecg,
    remove_mains_interference,
    remove_pacer_spikes,
)
from ecg.measure import measure_axes, measure_intervals, measure_rhythm, measure_st_deviation
from ecg.morphology import Morphology, measure_morphology
from ecg.record import EcgPacemakerSpike, EcgRecord
from ecg.rhythm import assess_rhythm
from ecg.statements import Pacing, Statement, compose_statements

__all__ = [
    "DEVICE_TOLERANCE",
    "INTERVAL_TOLERANCE_MS",
    "MEASUREMENT_KEYS",
    "DeviceDifference",
    "EcgAnalysis",
    "SignalQuality",
    "analyze_ecg",
    "assess_signal_quality",
    "beyond_tolerance",
    "compare_with_device",
    "merge_device_spikes",
]

FloatArray = npt.NDArray[np.float64]

#: Keys of :attr:`EcgAnalysis.measurements` (always all present; ``None`` if unmeasured).
MEASUREMENT_KEYS: tuple[str, ...] = (
    "heart_rate_bpm",
    "rr_ms",
    "rr_sdnn_ms",
    "rr_rmssd_ms",
    "rr_max_ms",
    "p_ms",
    "pr_ms",
    "qrs_ms",
    "qt_ms",
    "qtc_bazett_ms",
    "qtc_fridericia_ms",
    "qtc_framingham_ms",
    "p_axis_deg",
    "qrs_axis_deg",
    "t_axis_deg",
)
#: Shortest record analysed, seconds.
MIN_DURATION_S = 2.0
#: A lead whose peak-to-peak range stays under this is flat (electrode off).
FLAT_LEAD_UV = 20.0
#: A lead whose high-frequency residue (above the muscle-noise cut-off) exceeds this is noisy.
NOISY_LEAD_UV = 60.0
LOW_SAMPLING_RATE_HZ = 250.0


#: How far our measurement may lie from the cart's own (by the cart's keys, see
#: :data:`ecg.record.MEASUREMENT_KEYS`) before the reader is told: 5 bpm, 25 ms of RR, 15°
#: of axis, 10 ms for any other interval.
DEVICE_TOLERANCE: dict[str, float] = {
    "heart_rate_bpm": 5.0,
    "rr_ms": 25.0,
    "p_axis_deg": 15.0,
    "qrs_axis_deg": 15.0,
    "t_axis_deg": 15.0,
}
INTERVAL_TOLERANCE_MS = 10.0
#: Our key for what a cart calls ``qtc_ms``: Bazett's, as carts print it.
OUR_KEY = {"qtc_ms": "qtc_bazett_ms"}


@dataclass(frozen=True, kw_only=True)
class DeviceDifference:
    """One measurement the cart wrote into its file, beside ours."""

    key: str
    device: float
    ours: float | None
    difference: float | None
    tolerance: float
    beyond_tolerance: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "device": _round(self.device),
            "ours": _round(self.ours),
            "difference": _round(self.difference),
            "tolerance": self.tolerance,
            "beyond_tolerance": self.beyond_tolerance,
        }


def _difference(key: str, ours: float, device: float) -> float:
    difference = ours - device
    if key.endswith("_axis_deg"):  # -170° and 175° are 15° apart
        difference = (difference + 180.0) % 360.0 - 180.0
    return difference


def beyond_tolerance(key: str, ours: float | None, device: float | None) -> bool:
    """Whether our value of a cart's measurement key lies further from the cart's than
    :data:`DEVICE_TOLERANCE` allows (``False`` when either is missing)."""
    if ours is None or device is None:
        return False
    tolerance = DEVICE_TOLERANCE.get(key, INTERVAL_TOLERANCE_MS)
    return abs(_difference(key, ours, device)) > tolerance


def compare_with_device(
    ours: dict[str, float | None], device: dict[str, float]
) -> tuple[DeviceDifference, ...]:
    """Each measurement the cart gives, beside ours (keys of :data:`MEASUREMENT_KEYS`)."""
    out: list[DeviceDifference] = []
    for key, value in device.items():
        mine = ours.get(OUR_KEY.get(key, key))
        out.append(
            DeviceDifference(
                key=key,
                device=value,
                ours=mine,
                difference=None if mine is None else _difference(key, mine, value),
                tolerance=DEVICE_TOLERANCE.get(key, INTERVAL_TOLERANCE_MS),
                beyond_tolerance=beyond_tolerance(key, mine, value),
            )
        )
    return tuple(out)


@dataclass(frozen=True, kw_only=True)
class SignalQuality:
    """Which leads are usable: flat (electrode off) and noisy lead names, and notes."""

    leads_off: list[str] = field(default_factory=list)
    noisy_leads: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True, eq=False)
class EcgAnalysis:
    """The result of :func:`analyze_ecg`.

    Parameters
    ----------
    sampling_rate_hz
        Of the record; every sample index below counts at this rate from its first sample.
    leads
        Lead names of the record (and of the median-beat rows).
    measurements
        :data:`MEASUREMENT_KEYS` to values in the unit of each key, ``None`` if unmeasured.
    st_deviation_uv
        ST deviation at J + 60 ms per lead, microvolts (positive: elevation).
    r_peaks
        R-peak sample indices, increasing.
    beats
        Fiducials of each beat (one per R peak), record sample indices.
    median_beat_uv
        Representative beat, microvolts, ``(n_leads, n_samples)``; ``None`` with too few beats.
    median_r_index
        R-peak column of `median_beat_uv`.
    median_fiducials
        Fiducials of the median beat, column indices into `median_beat_uv`.
    statements
        For the reader to confirm.
    suspected_stemi
        ST elevation at the J point meets the STEMI criterion in two contiguous leads (behind
        LBBB, another wide QRS or a wide paced complex: the Smith-modified Sgarbossa
        criteria): the service raises the case to the STEMI priority.
    pacer_spikes
        Sample indices of the pacemaker stimuli: those our filter found (and removed before
        analysis) together with those the cart stored in its file (see
        :func:`merge_device_spikes`).
    warnings
        Signal-quality and input notes, English.
    device_comparison
        The measurements the cart wrote into the file, each beside ours and flagged when
        the two differ by more than :data:`DEVICE_TOLERANCE`.
    device_statements, device_lead_measurements, device_pacemaker_spikes
        What else the cart wrote into the file, as the record holds it: its interpretation
        statements, its per-lead measurements, the pacemaker stimuli it detected.
    """

    sampling_rate_hz: float
    leads: tuple[str, ...]
    measurements: dict[str, float | None]
    st_deviation_uv: dict[str, float]
    r_peaks: npt.NDArray[np.int64]
    beats: tuple[BeatFiducials, ...]
    median_beat_uv: FloatArray | None
    median_r_index: int | None
    median_fiducials: BeatFiducials | None
    statements: tuple[Statement, ...]
    suspected_stemi: bool
    warnings: tuple[str, ...]
    pacer_spikes: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    device_comparison: tuple[DeviceDifference, ...] = ()
    device_statements: tuple[str, ...] = ()
    device_lead_measurements: dict[str, dict[str, float]] = field(default_factory=dict)
    device_pacemaker_spikes: tuple[EcgPacemakerSpike, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the ``telemed ecg analyze --json`` object, without ``path``).

        The measurements appear both under ``"measurements"`` and at the top level, so the
        JSON line has the measurements beside ``"r_peaks"`` and ``"beats"`` (sample indices or
        ``null``, at :attr:`sampling_rate_hz`).
        """
        measurements = {k: _round(v) for k, v in self.measurements.items()}
        median: dict[str, Any] | None = None
        if self.median_beat_uv is not None and self.median_fiducials is not None:
            median = {
                "leads": list(self.leads),
                "samples_uv": np.round(self.median_beat_uv, 1).tolist(),
                "r_index": self.median_r_index,
                "fiducials": self.median_fiducials.to_dict(),
            }
        return {
            **measurements,
            "sampling_rate_hz": self.sampling_rate_hz,
            "leads": list(self.leads),
            "measurements": measurements,
            "st_deviation_uv": {k: round(v, 1) for k, v in self.st_deviation_uv.items()},
            "r_peaks": [int(p) for p in self.r_peaks],
            "beats": [b.to_dict() for b in self.beats],
            "median_beat": median,
            "statements": [s.to_dict() for s in self.statements],
            "suspected_stemi": self.suspected_stemi,
            "pacer_spikes": [int(p) for p in self.pacer_spikes],
            "warnings": list(self.warnings),
            "device_measurements": {d.key: _round(d.device) for d in self.device_comparison},
            "device_comparison": [d.to_dict() for d in self.device_comparison],
            "device_statements": list(self.device_statements),
            "device_lead_measurements": {
                lead: {k: _round(v) for k, v in values.items()}
                for lead, values in self.device_lead_measurements.items()
            },
            "device_pacemaker_spikes": [
                _spike_dict(s, self.sampling_rate_hz) for s in self.device_pacemaker_spikes
            ],
        }


def _spike_dict(spike: EcgPacemakerSpike, fs: float) -> dict[str, Any]:
    """A cart's stimulus: its time, the sample it falls on at `fs`, what the cart measured."""
    return {
        "time_ms": _round(spike.time_ms),
        "sample": round(spike.time_ms * fs / 1000.0),
        "amplitude_uv": _round(spike.amplitude_uv),
        "pulse_width_us": _round(spike.pulse_width_us),
        "triggers": spike.triggers,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 1)


def assess_signal_quality(
    samples_uv: npt.ArrayLike, sampling_rate_hz: float, leads: tuple[str, ...]
) -> SignalQuality:
    """Find flat (electrode off) and noisy leads.

    Parameters
    ----------
    samples_uv
        Raw signal, microvolts, ``(n_leads, n_samples)``.
    sampling_rate_hz
        Samples per second.
    leads
        Lead names, one per row.

    Returns
    -------
    SignalQuality
        Flat leads (range under 20 µV), noisy leads (residue above 40 Hz, after the mains
        notch, over 60 µV RMS), and warnings naming them.
    """
    data = np.asarray(samples_uv, dtype=np.float64)
    fs = float(sampling_rate_hz)
    off = [leads[i] for i in range(data.shape[0]) if _lead_off(data[i])]
    noisy: list[str] = []
    if 0.45 * fs > 40.0 and data.shape[1] > 30:
        # Residue after removing everything an ECG holds below 40 Hz and both mains
        # frequencies: muscle noise, electrode artefact.
        notched = remove_mains_interference(data, fs, mains=MainsFrequency.HZ_50)
        notched = remove_mains_interference(notched, fs, mains=MainsFrequency.HZ_60)
        width = max(3, round(0.025 * fs))
        smooth = ndimage.uniform_filter1d(notched, size=width, axis=1, mode="nearest")
        residue = notched - smooth
        rms = np.sqrt(np.mean(residue * residue, axis=1))
        noisy = [
            leads[i] for i in range(data.shape[0]) if rms[i] > NOISY_LEAD_UV and leads[i] not in off
        ]
    notes: list[str] = []
    if off:
        notes.append(f"flat lead(s), electrode off?: {', '.join(off)}")
    if noisy:
        notes.append(f"noisy lead(s): {', '.join(noisy)}")
    return SignalQuality(leads_off=off, noisy_leads=noisy, warnings=notes)


#: A lead that sits on its lowest or highest value this share of the time is clipped at the
#: amplifier's rail: the electrode is off (an ECG reaches its extremes at a few samples).
RAILED_FRACTION = 0.2


def _lead_off(lead: FloatArray) -> bool:
    """Flat (range under :data:`FLAT_LEAD_UV`) or railed (at its extremes a fifth of the time)."""
    low, high = float(lead.min()), float(lead.max())
    if high - low < FLAT_LEAD_UV:
        return True
    at_rail = np.count_nonzero((lead == low) | (lead == high))
    return bool(at_rail >= RAILED_FRACTION * lead.size)


def _rhythm_features(
    r_peaks: npt.NDArray[np.int64], beats: list[BeatFiducials]
) -> tuple[float, float | None, int]:
    p_fraction = (
        sum(1 for b in beats if b.p_on is not None and b.p_off is not None) / len(beats)
        if beats
        else 0.0
    )
    rr = np.diff(r_peaks).astype(np.float64)
    irregularity: float | None = None
    premature = 0
    if rr.size >= 3:
        irregularity = float(np.median(np.abs(np.diff(rr))) / np.median(rr))
        local = ndimage.median_filter(rr, size=min(rr.size, 9), mode="nearest")
        premature = int(np.sum((rr < 0.8 * local)[:-1] & (rr[1:] > 1.05 * local[1:])))
    return p_fraction, irregularity, premature


#: A stimulus paces the ventricles when it falls this long before the QRS onset (to a little
#: after: the onset is found once the stimulus is bridged), the atria likewise before the P.
PACED_BEFORE_S = 0.08
PACED_AFTER_S = 0.01


#: A cart's stimulus this close to one our filter found is the same stimulus.
SAME_SPIKE_S = 0.01


def merge_device_spikes(
    found: npt.NDArray[np.int64],
    device: tuple[EcgPacemakerSpike, ...],
    sampling_rate_hz: float,
    n_samples: int,
) -> npt.NDArray[np.int64]:
    """The stimuli our filter `found` together with those the cart stored (sample indices).

    A cart that stored its stimuli detected them on its own amplifier, at a rate far above
    the one it keeps the trace at and before its filters smoothed them away, so it knows
    better than our filter, which finds only what stands out of the stored trace (and
    nothing below 400 Hz). Each cart stimulus (its time from the start of the recording)
    is kept; one of ours within :data:`SAME_SPIKE_S` of a cart's is the same stimulus and
    keeps our position, which is where the trace shows it. Cart stimuli outside the
    recording are dropped. The cart's stimuli are not bridged in the trace: what the trace
    still shows of them our filter has already removed.

    Returns
    -------
    numpy.ndarray
        ``int64`` sample indices, increasing, unique.
    """
    ours = np.unique(np.asarray(found, dtype=np.int64))
    if not device:
        return ours
    same = round(SAME_SPIKE_S * sampling_rate_hz)
    extra: list[int] = []
    for spike in device:
        at = round(spike.time_ms * sampling_rate_hz / 1000.0)
        if not 0 <= at < n_samples:
            continue
        i = int(np.searchsorted(ours, at - same))
        if i < ours.size and int(ours[i]) <= at + same:
            continue  # ours found it too
        extra.append(at)
    return np.unique(np.concatenate([ours, np.asarray(extra, dtype=np.int64)]))


def _stimuli(
    raw: FloatArray, record: EcgRecord, warnings: list[str]
) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """The trace without the stimuli our filter finds, and every stimulus: ours and the
    cart's (:func:`merge_device_spikes`), each source noted in `warnings`."""
    fs = record.sampling_rate_hz
    raw, found = remove_pacer_spikes(raw, fs)
    if found.size:
        warnings.append(
            f"{found.size} pacemaker stimuli found and removed before analysis: paced rhythm?"
        )
    spikes = merge_device_spikes(found, record.device_pacemaker_spikes, fs, record.n_samples)
    if spikes.size > found.size:
        warnings.append(
            f"{spikes.size - found.size} pacemaker stimuli taken from the cart's file: paced "
            "rhythm?"
        )
    return raw, spikes


def _pacing(spikes: npt.NDArray[np.int64], beats: list[BeatFiducials], fs: float) -> Pacing:
    """Which beats follow a pacemaker stimulus: just before the QRS, or just before the P."""
    before, after = round(PACED_BEFORE_S * fs), round(PACED_AFTER_S * fs)

    def near(onset: int | None) -> bool:
        if onset is None or spikes.size == 0:
            return False
        i = int(np.searchsorted(spikes, onset - before))
        return i < spikes.size and int(spikes[i]) <= onset + after

    ventricular = [near(b.qrs_on) for b in beats]
    atrial = [not v and near(b.p_on) for b, v in zip(beats, ventricular, strict=True)]
    return Pacing(beats=len(beats), ventricular=sum(ventricular), atrial=sum(atrial))


def _usable_morphology(morphology: Morphology | None, leads_off: list[str]) -> Morphology | None:
    """`morphology` without the flat leads (an electrode off measures nothing)."""
    if morphology is None or not leads_off:
        return morphology
    kept = {name: m for name, m in morphology.leads.items() if name not in leads_off}
    return Morphology(leads=kept, delta_wave=morphology.delta_wave)


def analyze_ecg(record: EcgRecord, *, mains: MainsFrequency = MainsFrequency.HZ_50) -> EcgAnalysis:
    """Analyse a resting or ambulatory ECG of any number of leads.

    The recipe: check the input, remove pacemaker stimuli, clean every lead, detect QRS
    complexes on all usable leads together, delineate each beat and the median beat, measure,
    and word the statements.

    Parameters
    ----------
    record
        Any :class:`~ecg.record.EcgRecord` (1 to 15 leads, any sampling rate above 100 Hz
        for meaningful intervals).
    mains
        Mains frequency to notch (50 Hz in China).

    Returns
    -------
    EcgAnalysis
        Sample indices at the record's own sampling rate.

    Raises
    ------
    EcgError
        The record is shorter than 2 s, holds non-finite samples, or no lead is usable (all
        flat or clipped: electrodes off).
    """
    fs = record.sampling_rate_hz
    raw = np.asarray(record.samples_uv, dtype=np.float64)
    if raw.size == 0 or raw.ndim != 2:
        raise EcgError("the ECG holds no samples")
    if not np.isfinite(raw).all():
        raise EcgError("the ECG holds NaN or infinite samples; the reader must drop or repair them")
    if record.duration_s < MIN_DURATION_S:
        raise EcgError(
            f"the ECG is {record.duration_s:.2f} s long; at least {MIN_DURATION_S:g} s are "
            "needed to analyse it"
        )
    warnings: list[str] = []
    if fs < LOW_SAMPLING_RATE_HZ:
        warnings.append(f"low sampling rate {fs:g} Hz: intervals are less precise")
    raw, pacer_spikes = _stimuli(raw, record, warnings)
    quality = assess_signal_quality(raw, fs, record.leads)
    warnings.extend(quality.warnings)
    usable = [i for i, name in enumerate(record.leads) if name not in quality.leads_off]
    if not usable:
        raise EcgError(
            f"no usable lead: every lead ({', '.join(record.leads)}) is flat or clipped, as when "
            "the electrodes are off; check the electrodes and record the ECG again"
        )

    clean = clean_ecg(raw, fs, mains=mains)
    r_peaks = detect_r_peaks(clean[usable], fs)
    beats = delineate_beats(clean, fs, r_peaks) if r_peaks.size else []
    median = compute_median_beat(clean, fs, r_peaks) if r_peaks.size >= 2 else None
    median_fiducials = delineate_median_beat(median, fs) if median is not None else None

    measurements: dict[str, float | None] = dict.fromkeys(MEASUREMENT_KEYS)
    measurements.update(measure_rhythm(r_peaks, fs))
    st_deviation: dict[str, float] = {}
    morphology: Morphology | None = None
    if median is not None and median_fiducials is not None:
        measurements.update(measure_intervals(median_fiducials, fs, measurements["rr_ms"]))
        measurements.update(measure_axes(median.samples_uv, record.leads, median_fiducials, fs))
        st_deviation = measure_st_deviation(median.samples_uv, record.leads, median_fiducials, fs)
        for name in quality.leads_off:
            st_deviation.pop(name, None)
        morphology = _usable_morphology(
            measure_morphology(median.samples_uv, record.leads, median_fiducials, fs),
            quality.leads_off,
        )

    p_fraction, irregularity, premature = _rhythm_features(r_peaks, beats)
    rhythm = assess_rhythm(
        clean,
        fs,
        r_peaks,
        beats,
        median_uv=median.samples_uv if median is not None else None,
        median_r_index=median.r_index if median is not None else None,
        qrs_ms=measurements["qrs_ms"],
        p_axis_deg=measurements["p_axis_deg"],
        median_p_wave=measurements["p_ms"] is not None,
        median_fiducials=median_fiducials,
        leads=record.leads,
    )
    sex = record.patient.sex.value if record.patient.sex is not None else None
    statements, suspected_stemi = compose_statements(
        measurements,
        st_deviation_uv=st_deviation,
        p_wave_fraction=p_fraction,
        rr_irregularity=irregularity,
        n_premature=premature,
        sampling_rate_hz=fs,
        leads_off=quality.leads_off,
        noisy_leads=quality.noisy_leads,
        sex=sex,
        age_years=record.patient.age_years,
        pacing=_pacing(pacer_spikes, beats, fs) if pacer_spikes.size else None,
        morphology=morphology,
        rhythm=rhythm,
    )
    if r_peaks.size == 0:
        warnings.append("no QRS complex detected")
    comparison = compare_with_device(measurements, record.device_measurements)
    warnings.extend(
        f"{d.key}: ours {d.ours:.0f} against the cart's {d.device:.0f}, more than "
        f"{d.tolerance:g} apart: check it on the trace"
        for d in comparison
        if d.beyond_tolerance and d.ours is not None
    )
    return EcgAnalysis(
        sampling_rate_hz=fs,
        leads=record.leads,
        measurements=measurements,
        st_deviation_uv=st_deviation,
        r_peaks=r_peaks,
        beats=tuple(beats),
        median_beat_uv=median.samples_uv if median is not None else None,
        median_r_index=median.r_index if median is not None else None,
        median_fiducials=median_fiducials,
        statements=tuple(statements),
        suspected_stemi=suspected_stemi,
        warnings=tuple(warnings),
        pacer_spikes=pacer_spikes,
        device_comparison=comparison,
        device_statements=record.device_statements,
        device_lead_measurements={k: dict(v) for k, v in record.device_lead_measurements.items()},
        device_pacemaker_spikes=record.device_pacemaker_spikes,
    )
