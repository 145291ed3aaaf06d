"""Physics of the filters: each removes what it claims and keeps the QRS band."""

from __future__ import annotations

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
)
from tests.unit.ecg.signal_support import synthetic_lead

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
