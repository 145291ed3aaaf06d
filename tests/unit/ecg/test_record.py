"""EcgRecord and its parts validate what they are given."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pytest

from ecg import EcgDevice, EcgFormat, EcgPatient, EcgRecord, EcgRecordError, Sex


def make(**overrides: Any) -> EcgRecord:
    values: dict[str, Any] = {
        "leads": ("I", "II"),
        "samples_uv": np.zeros((2, 500)),
        "sampling_rate_hz": 500.0,
        "source_format": EcgFormat.CSV,
    }
    values.update(overrides)
    return EcgRecord(**values)


def test_valid_record_exposes_duration_and_leads() -> None:
    samples = np.vstack([np.arange(1000.0), -np.arange(1000.0)])
    record = make(
        samples_uv=samples,
        acquired_at=datetime(2024, 5, 1, 8, 30, tzinfo=UTC),
        patient=EcgPatient(id="P1", sex=Sex.FEMALE, birth_date=date(1950, 1, 2), age_years=74),
        device=EcgDevice(manufacturer="Acme", model="X1"),
        device_measurements={"heart_rate_bpm": 60, "qrs_ms": 90.0},
    )
    assert record.duration_s == pytest.approx(2.0)
    assert record.n_samples == 1000
    np.testing.assert_array_equal(record.lead("II"), -np.arange(1000.0))
    assert record.device_measurements == {"heart_rate_bpm": 60.0, "qrs_ms": 90.0}


def test_samples_are_a_read_only_copy() -> None:
    samples = np.zeros((2, 10))
    record = make(samples_uv=samples)
    samples[0, 0] = 5.0
    assert record.samples_uv[0, 0] == 0.0
    with pytest.raises(ValueError, match="read-only"):
        record.samples_uv[0, 0] = 1.0


def test_unknown_lead_raises_key_error_naming_the_leads() -> None:
    with pytest.raises(KeyError, match="V1"):
        make().lead("V1")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"samples_uv": np.zeros((3, 10))},
            r"shape \(n_leads, n_samples\) = \(2, n >= 1\), got \(3, 10\)",
        ),
        ({"samples_uv": np.zeros((2, 0))}, "got \\(2, 0\\)"),
        ({"samples_uv": np.zeros((2, 10), dtype=np.float32)}, "float64, got float32"),
        ({"samples_uv": np.array([[0.0, np.nan], [0.0, 0.0]])}, "lead I sample 1 is nan"),
        ({"sampling_rate_hz": 0.0}, "sampling_rate_hz must be a finite number > 0, got 0.0"),
        ({"sampling_rate_hz": float("inf")}, "sampling_rate_hz"),
        ({"leads": ("I", "I")}, r"unique, \['I'\] appear twice"),
        ({"leads": ()}, "non-empty tuple"),
        ({"device_measurements": {"hr": 60.0}}, "unknown key 'hr'"),
        ({"device_measurements": {"qt_ms": float("nan")}}, r"\['qt_ms'\] must be a finite number"),
        ({"acquired_at": "2024-01-01"}, "acquired_at must be a datetime"),
        ({"source_format": "csv"}, "source_format must be an EcgFormat"),
        ({"warnings": ["a list"]}, "warnings must be a tuple of str"),
    ],
)
def test_invalid_values_are_named(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(EcgRecordError, match=message):
        make(**overrides)


def test_patient_age_must_be_non_negative() -> None:
    with pytest.raises(
        EcgRecordError, match="age_years must be a finite number >= 0 or None, got -1"
    ):
        EcgPatient(age_years=-1)


def test_record_is_frozen() -> None:
    record = make()
    with pytest.raises(AttributeError):
        record.sampling_rate_hz = 250.0  # type: ignore[misc]
