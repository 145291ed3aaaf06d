"""ECG filtering: baseline wander, mains interference and muscle noise.

Every filter is zero-phase (applied forwards and backwards), so it moves no wave in time and
keeps the ST segment where it was. Each function takes one lead ``(n_samples,)`` or a record
``(n_leads, n_samples)`` in microvolts and filters along the last axis.
"""

from __future__ import annotations

from enum import Enum

import numpy as np
import numpy.typing as npt
from scipy import ndimage
from scipy import signal as sps

from ecg.errors import EcgError

__all__ = [
    "BaselineMethod",
    "MainsFrequency",
    "clean_ecg",
    "remove_baseline_wander",
    "remove_mains_interference",
    "remove_muscle_noise",
    "remove_pacer_spikes",
]

FloatArray = npt.NDArray[np.float64]

#: AHA recommendation for diagnostic ECGs with a zero-phase high-pass filter.
DEFAULT_HIGHPASS_HZ = 0.67
#: Muscle (EMG) noise lies mostly above this; the QRS complex has little energy there.
DEFAULT_LOWPASS_HZ = 40.0
#: A pacemaker stimulus is an impulse a few milliseconds wide (carts often store it as a
#: one-sample marker in every lead): it stands out from a running median this narrow.
PACER_MEDIAN_S = 0.008
#: ... by at least this much, in at least this share of the leads at once.
PACER_MIN_UV = 250.0
PACER_LEAD_SHARE = 0.5
#: Below this rate a stimulus cannot be told from a sharp QRS, and none is looked for.
PACER_MIN_RATE_HZ = 400.0
#: The stimulus leaves a decaying polarisation artefact: blank this long after it.
PACER_BLANK_S = 0.010


class BaselineMethod(Enum):
    """How :func:`remove_baseline_wander` estimates the baseline."""

    #: Zero-phase 2nd-order Butterworth high-pass (fast; default).
    HIGHPASS = "highpass"
    #: Two cascaded median filters (200 ms, then 600 ms): the classic morphological baseline.
    MEDIAN = "median"


class MainsFrequency(Enum):
    """Mains (power line) frequency of the site where the ECG was recorded."""

    HZ_50 = 50.0
    HZ_60 = 60.0


def _as_float(signal_uv: npt.ArrayLike) -> FloatArray:
    data = np.asarray(signal_uv, dtype=np.float64)
    if data.ndim not in (1, 2):
        raise EcgError(
            f"signal must have shape (n_samples,) or (n_leads, n_samples), got {data.shape}"
        )
    return data


def _check_rate(sampling_rate_hz: float) -> None:
    if not np.isfinite(sampling_rate_hz) or sampling_rate_hz <= 0:
        raise EcgError(f"sampling_rate_hz must be a finite number > 0, got {sampling_rate_hz!r}")


def _filtfilt(sos: FloatArray, data: FloatArray) -> FloatArray:
    # sosfiltfilt needs a few filter lengths of signal for its edge padding.
    padlen = min(data.shape[-1] - 1, 3 * (2 * len(sos) + 1) * 10)
    if padlen < 1:
        return data.copy()
    result: FloatArray = sps.sosfiltfilt(sos, data, axis=-1, padlen=padlen)
    return result


def remove_baseline_wander(
    signal_uv: npt.ArrayLike,
    sampling_rate_hz: float,
    *,
    cutoff_hz: float = DEFAULT_HIGHPASS_HZ,
    method: BaselineMethod = BaselineMethod.HIGHPASS,
) -> FloatArray:
    """Remove baseline wander (respiration, electrode motion).

    Parameters
    ----------
    signal_uv
        Microvolts, shape ``(n_samples,)`` or ``(n_leads, n_samples)``.
    sampling_rate_hz
        Samples per second.
    cutoff_hz
        High-pass corner frequency (``HIGHPASS`` method only).
    method
        Baseline estimator, see :class:`BaselineMethod`.

    Returns
    -------
    numpy.ndarray
        Filtered signal, microvolts, same shape as the input.

    Raises
    ------
    EcgError
        The signal has the wrong shape or the sampling rate is not a positive number.
    """
    data = _as_float(signal_uv)
    _check_rate(sampling_rate_hz)
    if data.shape[-1] == 0:
        return data.copy()
    if method is BaselineMethod.MEDIAN:
        first = _odd(0.2 * sampling_rate_hz)
        second = _odd(0.6 * sampling_rate_hz)
        size1 = (1,) * (data.ndim - 1) + (first,)
        size2 = (1,) * (data.ndim - 1) + (second,)
        from scipy import ndimage

        baseline = ndimage.median_filter(
            ndimage.median_filter(data, size=size1, mode="nearest"), size=size2, mode="nearest"
        )
        result: FloatArray = data - baseline
        return result
    sos = sps.butter(2, cutoff_hz, btype="highpass", fs=sampling_rate_hz, output="sos")
    return _filtfilt(sos, data)


def _odd(samples: float) -> int:
    n = max(1, round(samples))
    return n if n % 2 else n + 1


def remove_mains_interference(
    signal_uv: npt.ArrayLike,
    sampling_rate_hz: float,
    *,
    mains: MainsFrequency = MainsFrequency.HZ_50,
    quality_factor: float = 30.0,
) -> FloatArray:
    """Remove power-line interference with a zero-phase notch at the mains frequency.

    The second harmonic is notched too when the sampling rate allows it.

    Parameters
    ----------
    signal_uv
        Microvolts, shape ``(n_samples,)`` or ``(n_leads, n_samples)``.
    sampling_rate_hz
        Samples per second. A notch above the Nyquist frequency is skipped (the
        interference cannot be represented there).
    mains
        50 Hz (China, Europe) or 60 Hz (Americas).
    quality_factor
        Notch centre frequency over its -3 dB bandwidth (30 gives about 1.7 Hz at 50 Hz).

    Returns
    -------
    numpy.ndarray
        Filtered signal, microvolts, same shape as the input.

    Raises
    ------
    EcgError
        The signal has the wrong shape or the sampling rate is not a positive number.
    """
    data = _as_float(signal_uv)
    _check_rate(sampling_rate_hz)
    result = data.copy()
    for harmonic in (1, 2):
        frequency_hz = mains.value * harmonic
        if frequency_hz >= 0.95 * sampling_rate_hz / 2 or result.shape[-1] < 2:
            continue
        b, a = sps.iirnotch(frequency_hz, quality_factor, fs=sampling_rate_hz)
        result = _filtfilt(sps.tf2sos(b, a), result)
    return result


def remove_muscle_noise(
    signal_uv: npt.ArrayLike,
    sampling_rate_hz: float,
    *,
    cutoff_hz: float = DEFAULT_LOWPASS_HZ,
) -> FloatArray:
    """Attenuate muscle (EMG) noise with a zero-phase 4th-order Butterworth low-pass.

    Parameters
    ----------
    signal_uv
        Microvolts, shape ``(n_samples,)`` or ``(n_leads, n_samples)``.
    sampling_rate_hz
        Samples per second. When `cutoff_hz` is at or above 0.45 × the sampling rate the
        signal is returned unchanged (it holds nothing above the cut-off to remove).
    cutoff_hz
        Corner frequency.

    Returns
    -------
    numpy.ndarray
        Filtered signal, microvolts, same shape as the input.

    Raises
    ------
    EcgError
        The signal has the wrong shape or the sampling rate is not a positive number.
    """
    data = _as_float(signal_uv)
    _check_rate(sampling_rate_hz)
    if cutoff_hz >= 0.45 * sampling_rate_hz or data.shape[-1] < 2:
        return data.copy()
    sos = sps.butter(4, cutoff_hz, btype="lowpass", fs=sampling_rate_hz, output="sos")
    return _filtfilt(sos, data)


def clean_ecg(
    signal_uv: npt.ArrayLike,
    sampling_rate_hz: float,
    *,
    mains: MainsFrequency = MainsFrequency.HZ_50,
    highpass_hz: float = DEFAULT_HIGHPASS_HZ,
    lowpass_hz: float = DEFAULT_LOWPASS_HZ,
) -> FloatArray:
    """Apply the diagnostic filter chain: baseline wander, mains notch, muscle-noise low-pass.

    Parameters
    ----------
    signal_uv
        Microvolts, shape ``(n_samples,)`` or ``(n_leads, n_samples)``.
    sampling_rate_hz
        Samples per second.
    mains
        Mains frequency to notch.
    highpass_hz, lowpass_hz
        Corner frequencies of the baseline and muscle-noise filters.

    Returns
    -------
    numpy.ndarray
        Filtered signal, microvolts, same shape as the input.

    Raises
    ------
    EcgError
        The signal has the wrong shape or the sampling rate is not a positive number.
    """
    data = remove_baseline_wander(signal_uv, sampling_rate_hz, cutoff_hz=highpass_hz)
    data = remove_mains_interference(data, sampling_rate_hz, mains=mains)
    return remove_muscle_noise(data, sampling_rate_hz, cutoff_hz=lowpass_hz)


def remove_pacer_spikes(
    signal_uv: npt.ArrayLike, sampling_rate_hz: float
) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """Find pacemaker stimuli and replace them with the surrounding signal.

    A stimulus is an impulse far narrower than any cardiac wave, present in most leads at
    the same instant. It is found where the signal stands at least 250 µV away from its
    8 ms running median in at least half the leads (and two leads, when there are several)
    at once. Each stimulus and the 10 ms of its decay are bridged by a straight line in every
    lead, so the filters do not smear the stimulus into the QRS complex and the delineation
    measures the paced complex itself, as 12-lead programs do.

    Parameters
    ----------
    signal_uv
        Raw signal, microvolts, ``(n_samples,)`` or ``(n_leads, n_samples)``.
    sampling_rate_hz
        Samples per second; below 400 Hz nothing is removed.

    Returns
    -------
    signal : numpy.ndarray
        Same shape as the input, stimuli removed (a copy).
    spikes : numpy.ndarray
        ``int64`` sample index of each stimulus, increasing.

    Raises
    ------
    EcgError
        The signal has the wrong shape or the sampling rate is not a positive number.
    """
    data = _as_float(signal_uv)
    _check_rate(sampling_rate_hz)
    out = np.array(data, dtype=np.float64, copy=True)
    none = np.zeros(0, dtype=np.int64)
    rows = out if out.ndim == 2 else out[np.newaxis, :]
    if sampling_rate_hz < PACER_MIN_RATE_HZ or rows.shape[1] < 5 or rows.shape[0] == 0:
        return out, none
    width = max(3, round(PACER_MEDIAN_S * sampling_rate_hz) | 1)
    median = ndimage.median_filter(rows, size=(1, width), mode="nearest")
    outlier = np.abs(rows - median) >= PACER_MIN_UV
    votes = outlier.sum(axis=0)
    needed = max(min(2, rows.shape[0]), int(np.ceil(PACER_LEAD_SHARE * rows.shape[0])))
    hit = votes >= needed
    if not hit.any():
        return out, none
    labels, count = ndimage.label(hit)
    centres = ndimage.maximum_position(votes, labels, index=np.arange(1, count + 1))
    spikes = np.asarray([c[0] for c in centres], dtype=np.int64)
    # Bridge the stimulus and its decay with a straight line, in every lead.
    blank = max(1, round(PACER_BLANK_S * sampling_rate_hz))
    n = rows.shape[1]
    for (span,) in ndimage.find_objects(labels):
        lo = max(0, span.start - 1)
        hi = min(n - 1, span.stop + blank)
        if hi - lo < 2:
            continue
        fraction = (np.arange(lo, hi + 1) - lo) / (hi - lo)
        rows[:, lo : hi + 1] = rows[:, [lo]] + fraction * (rows[:, [hi]] - rows[:, [lo]])
    return out, spikes
