"""Physics of the filters: each removes what it claims and keeps the QRS band."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import signal as sps

from ecg.filters import (
    BaselineMethod,
    MainsFrequency,
    clean_ecg,
    remove_baseline_wander,
    remove_mains_interference,
    remove_muscle_noise,
    remove_pacer_spikes,
)
from tests.unit.ecg.conftest import read_file
from tests.unit.ecg.signal_support import synthetic_lead, synthetic_record

FS = 500.0


def band_power(x: npt.NDArray[np.float64], lo: float, hi: float, fs: float = FS) -> float:
    f, p = sps.periodogram(x, fs=fs)
    return float(p[(f >= lo) & (f <= hi)].sum())


@pytest.fixture(scope="module")
def ecg_lead() -> npt.NDArray[np.float64]:
    lead, _ = synthetic_lead(fs=FS, duration_s=20.0)
    return lead


@pytest.mark.parametrize("method", list(BaselineMethod))
def test_baseline_filter_removes_energy_below_cutoff_and_keeps_qrs_band(
    ecg_lead: npt.NDArray[np.float64], method: BaselineMethod
) -> None:
    t = np.arange(ecg_lead.size) / FS
    wander = 800.0 * np.sin(2 * np.pi * 0.2 * t) + 300.0 * np.sin(2 * np.pi * 0.05 * t)
    noisy = ecg_lead + wander
    out = remove_baseline_wander(noisy, FS, method=method)
    assert out.shape == noisy.shape
    assert band_power(out, 0.0, 0.3) < 0.02 * band_power(noisy, 0.0, 0.3)
    assert band_power(out, 5.0, 25.0) == pytest.approx(band_power(ecg_lead, 5.0, 25.0), rel=0.1)


@pytest.mark.parametrize("mains", list(MainsFrequency))
def test_notch_removes_mains_and_keeps_qrs_band(
    ecg_lead: npt.NDArray[np.float64], mains: MainsFrequency
) -> None:
    t = np.arange(ecg_lead.size) / FS
    hum = 200.0 * np.sin(2 * np.pi * mains.value * t)
    noisy = ecg_lead + hum
    out = remove_mains_interference(noisy, FS, mains=mains)
    f0 = mains.value
    assert band_power(out, f0 - 0.5, f0 + 0.5) < 0.01 * band_power(noisy, f0 - 0.5, f0 + 0.5)
    assert band_power(out, 5.0, 25.0) == pytest.approx(band_power(ecg_lead, 5.0, 25.0), rel=0.02)


def test_lowpass_attenuates_muscle_noise_and_keeps_qrs_band(
    ecg_lead: npt.NDArray[np.float64],
) -> None:
    rng = np.random.default_rng(1)
    emg = sps.sosfiltfilt(
        sps.butter(4, [80.0, 200.0], btype="bandpass", fs=FS, output="sos"),
        rng.normal(0.0, 100.0, ecg_lead.size),
    )
    out = remove_muscle_noise(ecg_lead + emg, FS)
    assert band_power(out, 80.0, 200.0) < 0.01 * band_power(ecg_lead + emg, 80.0, 200.0)
    assert band_power(out, 5.0, 25.0) == pytest.approx(band_power(ecg_lead, 5.0, 25.0), rel=0.02)


def test_clean_keeps_shape_of_multilead_input(ecg_lead: npt.NDArray[np.float64]) -> None:
    data = np.vstack([ecg_lead, -ecg_lead, 0.5 * ecg_lead])
    out = clean_ecg(data, FS)
    assert out.shape == data.shape
    assert np.isfinite(out).all()


def test_notch_above_nyquist_is_skipped() -> None:
    x = np.sin(np.arange(1000) / 10.0)
    assert np.allclose(remove_mains_interference(x, 100.0, mains=MainsFrequency.HZ_60), x)


@settings(max_examples=30, deadline=None)
@given(
    data=arrays(
        np.float64,
        st.tuples(st.integers(1, 3), st.integers(1, 2000)),
        elements=st.floats(-5000, 5000, allow_nan=False),
    ),
    fs=st.sampled_from([100.0, 250.0, 500.0, 1000.0]),
)
def test_filters_keep_length_and_stay_finite(data: npt.NDArray[np.float64], fs: float) -> None:
    out = clean_ecg(data, fs)
    assert out.shape == data.shape
    assert np.isfinite(out).all()


def test_pacer_stimuli_are_found_and_bridged_in_every_lead() -> None:
    record = synthetic_record()
    clean = record.samples_uv
    stimuli = np.array([1000, 2200, 3400])
    paced = clean.copy()
    paced[:, stimuli] += 900.0  # one-sample stimulus markers, as carts store them
    restored, found = remove_pacer_spikes(paced, 500.0)
    assert found.tolist() == stimuli.tolist()
    assert restored.shape == paced.shape
    assert np.max(np.abs(restored[:, stimuli] - clean[:, stimuli])) < 100.0
    far = np.ones(clean.shape[1], dtype=bool)
    for k in stimuli:
        far[k - 2 : k + 8] = False
    np.testing.assert_array_equal(restored[:, far], paced[:, far])


def test_no_pacer_stimuli_in_unpaced_ecgs() -> None:
    for name in ("ge_muse_xml/braveheart_example1.xml", "dicom_waveform/waveform_ecg.dcm"):
        record = read_file(name)
        restored, found = remove_pacer_spikes(record.samples_uv, record.sampling_rate_hz)
        assert found.size == 0
        np.testing.assert_array_equal(restored, record.samples_uv)


def test_paced_ge_muse_file_shows_one_stimulus_per_beat() -> None:
    record = read_file("ge_muse_xml/braveheart_example4.xml")
    _, found = remove_pacer_spikes(record.samples_uv, record.sampling_rate_hz)
    rr_s = np.diff(found) / record.sampling_rate_hz
    assert found.size == 10  # 10 s at 61 bpm, a stimulus before each QRS
    assert np.all(np.abs(rr_s - 60.0 / record.device_measurements["heart_rate_bpm"]) < 0.1)


def test_pacer_search_is_skipped_at_low_sampling_rates() -> None:
    data = np.zeros((3, 1000))
    data[:, 500] = 2000.0
    restored, found = remove_pacer_spikes(data, 250.0)
    assert found.size == 0
    np.testing.assert_array_equal(restored, data)


# --- frequency responses, measured from the impulse response ------------------------------


def response(filtered_impulse: npt.NDArray[np.float64], fs: float = FS) -> Any:
    """|H(f)| of a linear filter from its (centred) impulse response, as a function of f."""
    spectrum = np.abs(np.fft.rfft(filtered_impulse))
    freqs = np.fft.rfftfreq(filtered_impulse.size, 1 / fs)
    return lambda f: float(np.interp(f, freqs, spectrum))


def impulse(seconds: float = 120.0, fs: float = FS) -> npt.NDArray[np.float64]:
    x = np.zeros(round(seconds * fs))
    x[x.size // 2] = 1.0
    return x


def test_baseline_highpass_response_and_zero_phase() -> None:
    x = impulse()
    y = remove_baseline_wander(x, FS, method=BaselineMethod.HIGHPASS)
    h = response(y)
    assert h(0.05) < 0.01  # respiration-scale drift gone
    assert h(0.2) < 0.1
    assert 0.4 < h(0.67) < 0.6  # the cut-off, twice through (zero phase): about -6 dB
    assert h(5.0) > 0.99  # P, T and QRS frequencies untouched
    assert h(40.0) > 0.999
    # zero phase: the impulse response is symmetric, so no wave (nor the ST level) moves in time
    centre = x.size // 2
    assert np.allclose(y[centre - 2000 : centre], y[centre + 2000 : centre : -1], atol=1e-9)


@pytest.mark.parametrize("mains", list(MainsFrequency))
def test_notch_response_is_narrow(mains: MainsFrequency) -> None:
    h = response(remove_mains_interference(impulse(), FS, mains=mains))
    f0 = float(mains.value)
    assert h(f0) < 0.01  # at least 40 dB down at the mains frequency
    assert h(f0 - 5.0) > 0.9  # and a few hertz away almost nothing
    assert h(f0 + 5.0) > 0.9
    assert h(20.0) > 0.99
    assert h(2 * f0) < 0.01  # the second harmonic is notched too (documented)
    assert h(1.5 * f0) > 0.99  # and nothing between them


def test_lowpass_response() -> None:
    h = response(remove_muscle_noise(impulse(), FS))
    assert h(20.0) > 0.98
    assert 0.4 < h(40.0) < 0.6  # the cut-off, twice through
    assert h(100.0) < 0.01  # muscle noise band
    assert h(200.0) < 0.001


def test_notch_on_a_real_humming_recording() -> None:
    """Contec 0000037 (800 Hz) carries strong 50 Hz hum: it goes, the QRS band stays."""
    record = read_file("contec_ecg90a/0000037.ECG")
    fs = record.sampling_rate_hz
    lead = record.lead("II") - record.lead("II").mean()
    out = remove_mains_interference(lead, fs, mains=MainsFrequency.HZ_50)
    before, after = band_power(lead, 49.5, 50.5, fs), band_power(out, 49.5, 50.5, fs)
    assert after < 0.01 * before
    assert band_power(out, 5.0, 25.0, fs) == pytest.approx(
        band_power(lead, 5.0, 25.0, fs), rel=0.02
    )
