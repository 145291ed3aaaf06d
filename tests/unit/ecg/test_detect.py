"""QRS detection: clinical metrics on annotated MIT-BIH development records, properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ecg.detect import QrsMethod, detect_r_peaks
from ecg.errors import EcgError
from ecg.filters import clean_ecg
from tests.unit.ecg.signal_support import gaussian, load_mitdb, match_beats, synthetic_lead


@pytest.mark.parametrize(
    ("record", "min_se", "min_ppv"),
    [("100", 0.999, 0.999), ("105", 0.995, 0.985)],
)
def test_sensitivity_and_positive_predictivity_on_mitdb(
    record: str, min_se: float, min_ppv: float
) -> None:
    signal_uv, fs, reference = load_mitdb(record)
    peaks = detect_r_peaks(signal_uv, fs)
    tp, fn, fp = match_beats(reference, peaks, round(0.150 * fs))
    assert tp / (tp + fn) >= min_se
    assert tp / (tp + fp) >= min_ppv


def test_both_leads_beat_one_on_record_108_with_large_p_and_t_waves() -> None:
    signal_uv, fs, reference = load_mitdb("108")
    tolerance = round(0.150 * fs)
    _, _, fp_fused = match_beats(reference, detect_r_peaks(signal_uv, fs), tolerance)
    _, _, fp_single = match_beats(reference, detect_r_peaks(signal_uv[0], fs), tolerance)
    assert fp_fused < fp_single


def test_finds_every_synthetic_beat() -> None:
    lead, beats = synthetic_lead(fs=250.0, duration_s=30.0, rate_bpm=90.0)
    for method in QrsMethod:
        peaks = detect_r_peaks(np.vstack([lead, -0.5 * lead]), 250.0, method=method)
        assert match_beats(beats, peaks, 10) == (beats.size, 0, 0)


def test_flat_short_and_empty_input_give_no_peaks() -> None:
    assert detect_r_peaks(np.zeros((2, 5000)), 500.0).size == 0
    assert detect_r_peaks(np.ones(100), 500.0).size == 0
    assert detect_r_peaks(np.zeros((1, 0)), 500.0).size == 0


def test_nan_and_bad_rate_are_refused() -> None:
    x = np.zeros(1000)
    x[10] = np.nan
    with pytest.raises(EcgError, match="NaN"):
        detect_r_peaks(x, 500.0)
    with pytest.raises(EcgError, match="sampling_rate_hz"):
        detect_r_peaks(np.zeros(1000), 0.0)


@settings(max_examples=40, deadline=None)
@given(
    data=arrays(
        np.float64,
        st.tuples(st.integers(1, 3), st.integers(0, 3000)),
        elements=st.floats(-5000, 5000, allow_nan=False),
    ),
    fs=st.sampled_from([100.0, 250.0, 360.0, 500.0]),
)
def test_peaks_are_in_range_and_strictly_increasing(data: np.ndarray, fs: float) -> None:
    peaks = detect_r_peaks(data, fs)
    assert peaks.dtype == np.int64
    assert np.all((peaks >= 0) & (peaks < data.shape[1]))
    assert np.all(np.diff(peaks) > 0)


def _gaussian_beats(
    t: np.ndarray, beats: np.ndarray, waves: list[tuple[float, float, float]]
) -> np.ndarray:
    """A lead made of one Gaussian per (amplitude µV, delay s after the beat, width s)."""
    x = np.zeros_like(t)
    for b in beats:
        for amplitude, delay, width in waves:
            x += amplitude * gaussian(t, b + delay, width)
    return x


def test_interpolated_ventricular_beats_are_kept() -> None:
    """Interpolated PVCs fall midway between two sinus beats with no compensatory pause, so
    the two RR intervals around each add up to one; they look like neither neighbour but like
    each other, and are beats, not noise spikes."""
    fs = 360.0
    t = np.arange(round(40 * fs)) / fs
    sinus = np.arange(0.5, 39.5, 1.0)
    ectopic = sinus[10:30:3] + 0.5  # after every third sinus beat
    normal = [(1000.0, 0.0, 0.010), (250.0, 0.25, 0.04)]
    wide = [(900.0, -0.03, 0.018), (-1400.0, 0.02, 0.022), (500.0, 0.20, 0.05)]
    leads = [_gaussian_beats(t, sinus, normal) + _gaussian_beats(t, ectopic, wide)]
    leads.append(0.6 * leads[0])
    reference = np.round(np.sort(np.concatenate([sinus, ectopic])) * fs).astype(np.int64)
    for data in (np.vstack(leads), leads[0]):
        peaks = detect_r_peaks(data, fs)
        assert match_beats(reference, peaks, round(0.150 * fs)) == (reference.size, 0, 0)


@pytest.mark.parametrize("fs", [100.0, 125.0, 250.0, 500.0])
def test_tall_t_waves_in_leads_with_a_small_qrs_are_not_beats(fs: float) -> None:
    """At 57 bpm, leads whose T wave is four to nine times their small QRS (the T wave, not the
    QRS, sets their level) would pass each T wave off as a beat; its slope summed over the
    leads is well under half the QRS's, so it is not one (a 100 Hz cart's rate had doubled)."""
    t = np.arange(round(20 * fs)) / fs
    beats = np.arange(0.5, 19.4, 60 / 57)
    leads = []
    for qrs, t_wave in ((1000.0, 1200.0), (300.0, 1500.0), (150.0, 1350.0), (800.0, 900.0)):
        waves = [(qrs, 0.0, 0.012), (-0.3 * qrs, 0.03, 0.01), (t_wave, 0.30, 0.035)]
        leads.append(_gaussian_beats(t, beats, [*waves, (80.0, -0.16, 0.025)]))
    data = clean_ecg(np.vstack(leads), fs)
    peaks = detect_r_peaks(data, fs)
    reference = np.round(beats * fs).astype(np.int64)
    assert match_beats(reference, peaks, round(0.150 * fs)) == (beats.size, 0, 0)


def _bigeminy(second_sinus_uv: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Ventricular bigeminy over 60 s in two leads with noise: the first shows every beat, the
    second the large ectopic beats and a sinus QRS of `second_sinus_uv`. Returns the leads,
    the reference beats and the sampling rate."""
    fs = 360.0
    t = np.arange(round(60 * fs)) / fs
    sinus = np.arange(0.5, 59.0, 1.2)
    ectopic = sinus + 0.45
    normal = [(1000.0, 0.0, 0.010), (250.0, 0.25, 0.04)]
    wide = [(900.0, -0.03, 0.018), (-1400.0, 0.02, 0.022), (500.0, 0.20, 0.05)]
    first = _gaussian_beats(t, sinus, normal) + 0.35 * _gaussian_beats(t, ectopic, wide)
    second = _gaussian_beats(t, sinus, [(second_sinus_uv, 0.0, 0.010)])
    second = second + _gaussian_beats(t, ectopic, wide)
    noise = np.random.default_rng(7).normal(0.0, 15.0, (2, t.size))
    reference = np.round(np.sort(np.concatenate([sinus, ectopic])) * fs).astype(np.int64)
    return np.vstack([first, second]) + noise, reference, fs


def test_a_lead_showing_only_the_ectopic_beats_does_not_hide_the_sinus_ones() -> None:
    """Ventricular bigeminy seen in two leads: the first shows every beat; the second (V1 of
    such a patient) shows the large ectopic beats but hardly the sinus ones. That second lead
    is the more peaked, but must not outvote the first (with each lead weighted by its
    quality squared, 14 of the 49 sinus beats were lost; fused by quality alone, 3): with each
    lead's weight also scaled by its beat-level agreement with a first detection, every beat is
    found."""
    data, reference, fs = _bigeminy(100.0)
    peaks = detect_r_peaks(data, fs)
    assert match_beats(reference, peaks, round(0.150 * fs)) == (reference.size, 0, 0)


def test_a_good_lead_adds_the_sinus_beats_the_fused_feature_misses() -> None:
    """The same bigeminy with the second lead's sinus QRS at 5 % of the first's: the fused
    feature loses 14 of the 49 sinus beats; the first lead, detected alone, finds nearly every
    fused beat around and shows them with the fused beats' waveform, so they are added."""
    data, reference, fs = _bigeminy(50.0)
    tp, _, fp = match_beats(reference, detect_r_peaks(data, fs), round(0.150 * fs))
    assert fp == 0
    assert tp >= 0.9 * reference.size
