"""The in-memory ECG record every format reader returns."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum

import numpy as np
import numpy.typing as npt

from ecg.errors import EcgRecordError

__all__ = [
    "LEAD_MEASUREMENT_KEYS",
    "MEASUREMENT_KEYS",
    "STANDARD_LEADS",
    "EcgDevice",
    "EcgFormat",
    "EcgPacemakerSpike",
    "EcgPatient",
    "EcgRecord",
    "Sex",
]

#: The twelve standard leads, in the order of the standard 12-lead sheet.
STANDARD_LEADS: tuple[str, ...] = (
    "I",
    "II",
    "III",
    "aVR",
    "aVL",
    "aVF",
    "V1",
    "V2",
    "V3",
    "V4",
    "V5",
    "V6",
)

#: Canonical keys of :attr:`EcgRecord.device_measurements` and their units.
MEASUREMENT_KEYS: Mapping[str, str] = {
    "heart_rate_bpm": "beats per minute",
    "rr_ms": "ms",
    "p_ms": "ms",
    "pr_ms": "ms",
    "qrs_ms": "ms",
    "qt_ms": "ms",
    "qtc_ms": "ms",
    "p_axis_deg": "degrees",
    "qrs_axis_deg": "degrees",
    "t_axis_deg": "degrees",
}

#: Canonical keys of :attr:`EcgRecord.device_lead_measurements` (per lead) and their units.
LEAD_MEASUREMENT_KEYS: Mapping[str, str] = {
    "p_ms": "ms",
    "pr_ms": "ms",
    "qrs_ms": "ms",
    "qt_ms": "ms",
    "q_ms": "ms",
    "r_ms": "ms",
    "s_ms": "ms",
    "p_plus_uv": "µV",
    "p_minus_uv": "µV",
    "q_uv": "µV",
    "r_uv": "µV",
    "s_uv": "µV",
    "j_uv": "µV",
    "t_plus_uv": "µV",
    "t_minus_uv": "µV",
    "st_j20_uv": "µV",
    "st_j60_uv": "µV",
    "st_j80_uv": "µV",
}


class EcgFormat(Enum):
    """The file format an :class:`EcgRecord` was read from."""

    DICOM = "dicom"
    HL7_AECG = "hl7_aecg"
    SCP_ECG = "scp_ecg"
    SCP_ECG_HEALFORCE = "scp_ecg_healforce"
    PHILIPS_XML = "philips_xml"
    GE_MUSE_XML = "ge_muse_xml"
    CONTEC_ECG90A = "contec_ecg90a"
    WFDB = "wfdb"
    CSV = "csv"


class Sex(Enum):
    """Patient sex as recorded by the device."""

    MALE = "M"
    FEMALE = "F"
    OTHER = "O"


def _check_optional_text(owner: str, name: str, value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise EcgRecordError(f"{owner}.{name} must be a str or None, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class EcgPatient:
    """Patient demographics as the ECG file states them (every field optional).

    Parameters
    ----------
    id
        Patient identifier as written by the device (not qualified by an issuer).
    name
        Patient name as one display string.
    sex
        Recorded sex, ``None`` when the file leaves it unknown.
    birth_date
        Date of birth.
    age_years
        Age at acquisition in years (fractional for infants whose age is given in months,
        weeks or days), ``>= 0``.

    Raises
    ------
    EcgRecordError
        A field has the wrong type or the age is negative or not finite.
    """

    id: str | None = None
    name: str | None = None
    sex: Sex | None = None
    birth_date: date | None = None
    age_years: float | None = None

    def __post_init__(self) -> None:
        _check_optional_text("EcgPatient", "id", self.id)
        _check_optional_text("EcgPatient", "name", self.name)
        if self.sex is not None and not isinstance(self.sex, Sex):
            raise EcgRecordError(f"EcgPatient.sex must be a Sex or None, got {self.sex!r}")
        if self.birth_date is not None and (
            not isinstance(self.birth_date, date) or isinstance(self.birth_date, datetime)
        ):
            raise EcgRecordError(
                f"EcgPatient.birth_date must be a datetime.date or None, got {self.birth_date!r}"
            )
        if self.age_years is not None and (
            isinstance(self.age_years, bool)
            or not isinstance(self.age_years, int | float)
            or not math.isfinite(self.age_years)
            or self.age_years < 0
        ):
            raise EcgRecordError(
                f"EcgPatient.age_years must be a finite number >= 0 or None, got {self.age_years!r}"
            )


@dataclass(frozen=True, kw_only=True)
class EcgDevice:
    """The acquiring device as the ECG file states it (every field optional)."""

    manufacturer: str | None = None
    model: str | None = None
    serial_number: str | None = None

    def __post_init__(self) -> None:
        _check_optional_text("EcgDevice", "manufacturer", self.manufacturer)
        _check_optional_text("EcgDevice", "model", self.model)
        _check_optional_text("EcgDevice", "serial_number", self.serial_number)


@dataclass(frozen=True, kw_only=True)
class EcgPacemakerSpike:
    """A pacemaker stimulus the device detected and wrote into the file.

    Parameters
    ----------
    time_ms
        Time from the start of the recording, ``>= 0``.
    amplitude_uv
        Spike amplitude, ``None`` when the device did not measure it.
    pulse_width_us
        Pulse width, ``None`` when not measured.
    triggers
        What the stimulus triggered as the device states it (``"QRS"``, ``"P"``,
        ``"neither"``), ``None`` when unknown.
    """

    time_ms: float
    amplitude_uv: float | None = None
    pulse_width_us: float | None = None
    triggers: str | None = None

    def __post_init__(self) -> None:
        if not math.isfinite(self.time_ms) or self.time_ms < 0:
            raise EcgRecordError(
                f"EcgPacemakerSpike.time_ms must be a finite number >= 0, got {self.time_ms!r}"
            )
        _check_optional_text("EcgPacemakerSpike", "triggers", self.triggers)


@dataclass(frozen=True, kw_only=True, eq=False)
class EcgRecord:
    """One ECG recording, normalised from any supported file format.

    Parameters
    ----------
    leads
        Lead names, one per row of `samples_uv`, unique. The standard leads are spelled
        ``I II III aVR aVL aVF V1 … V6``; other leads keep the name the file gives them.
    samples_uv
        Signal in microvolts, ``float64``, shape ``(n_leads, n_samples)``, all finite. The
        record keeps a read-only copy.
    sampling_rate_hz
        Samples per second per lead, ``> 0``.
    acquired_at
        Acquisition start. Timezone-aware when the file states the zone; otherwise naive,
        meaning the device's local clock, and `warnings` says so.
    patient, device
        Demographics and device identity as the file states them.
    device_measurements
        Measurements the device (or its analysis program) wrote into the file, by the
        canonical keys of :data:`MEASUREMENT_KEYS` (``heart_rate_bpm``, ``pr_ms``, …).
    device_statements
        Interpretation statements the device wrote (free text, in file order).
    device_lead_measurements
        Per-lead measurements the device wrote, by lead name and the keys of
        :data:`LEAD_MEASUREMENT_KEYS`.
    device_pacemaker_spikes
        Pacemaker stimuli the device detected, in file order.
    source_format
        The format the record was read from.
    warnings
        Human-readable notes about what the reader had to assume, repair or drop.

    Raises
    ------
    EcgRecordError
        Any value is malformed; the message names the field and the value.
    """

    leads: tuple[str, ...]
    samples_uv: npt.NDArray[np.float64]
    sampling_rate_hz: float
    acquired_at: datetime | None = None
    patient: EcgPatient = field(default_factory=EcgPatient)
    device: EcgDevice = field(default_factory=EcgDevice)
    device_measurements: dict[str, float] = field(default_factory=dict)
    device_statements: tuple[str, ...] = ()
    device_lead_measurements: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    device_pacemaker_spikes: tuple[EcgPacemakerSpike, ...] = ()
    source_format: EcgFormat
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self._check_leads()
        self._check_samples()
        rate = self.sampling_rate_hz
        if (
            isinstance(rate, bool)
            or not isinstance(rate, int | float)
            or not math.isfinite(rate)
            or rate <= 0
        ):
            raise EcgRecordError(
                f"EcgRecord.sampling_rate_hz must be a finite number > 0, got {rate!r}"
            )
        object.__setattr__(self, "sampling_rate_hz", float(rate))
        if self.acquired_at is not None and not isinstance(self.acquired_at, datetime):
            raise EcgRecordError(
                f"EcgRecord.acquired_at must be a datetime or None, got {self.acquired_at!r}"
            )
        if not isinstance(self.patient, EcgPatient):
            raise EcgRecordError(f"EcgRecord.patient must be an EcgPatient, got {self.patient!r}")
        if not isinstance(self.device, EcgDevice):
            raise EcgRecordError(f"EcgRecord.device must be an EcgDevice, got {self.device!r}")
        self._check_measurements()
        self._check_device_extras()
        for name in ("device_statements", "warnings"):
            value = getattr(self, name)
            if not isinstance(value, tuple) or not all(isinstance(s, str) for s in value):
                raise EcgRecordError(f"EcgRecord.{name} must be a tuple of str, got {value!r}")
        if not isinstance(self.source_format, EcgFormat):
            raise EcgRecordError(
                f"EcgRecord.source_format must be an EcgFormat, got {self.source_format!r}"
            )

    def _check_leads(self) -> None:
        leads = self.leads
        if not isinstance(leads, tuple) or not leads:
            raise EcgRecordError(f"EcgRecord.leads must be a non-empty tuple, got {leads!r}")
        for name in leads:
            if not isinstance(name, str) or not name.strip():
                raise EcgRecordError(
                    f"EcgRecord.leads must hold non-empty lead names, got {name!r}"
                )
        duplicates = sorted({name for name in leads if leads.count(name) > 1})
        if duplicates:
            raise EcgRecordError(f"EcgRecord.leads must be unique, {duplicates} appear twice")

    def _check_samples(self) -> None:
        samples = self.samples_uv
        if not isinstance(samples, np.ndarray):
            raise EcgRecordError(
                f"EcgRecord.samples_uv must be a numpy array, got {type(samples).__name__}"
            )
        if samples.dtype != np.float64:
            raise EcgRecordError(f"EcgRecord.samples_uv must be float64, got {samples.dtype}")
        if samples.ndim != 2 or samples.shape[0] != len(self.leads) or samples.shape[1] == 0:
            raise EcgRecordError(
                "EcgRecord.samples_uv must have shape (n_leads, n_samples) = "
                f"({len(self.leads)}, n >= 1), got {samples.shape}"
            )
        finite = np.isfinite(samples)
        if not finite.all():
            lead_index, sample_index = np.argwhere(~finite)[0]
            raise EcgRecordError(
                "EcgRecord.samples_uv must be finite, lead "
                f"{self.leads[lead_index]} sample {sample_index} is "
                f"{samples[lead_index, sample_index]}"
            )
        frozen = np.array(samples, dtype=np.float64, copy=True)
        frozen.setflags(write=False)
        object.__setattr__(self, "samples_uv", frozen)

    def _check_measurements(self) -> None:
        measurements = self.device_measurements
        if not isinstance(measurements, Mapping):
            raise EcgRecordError(
                f"EcgRecord.device_measurements must be a mapping, got {measurements!r}"
            )
        checked: dict[str, float] = {}
        for key, value in measurements.items():
            if key not in MEASUREMENT_KEYS:
                raise EcgRecordError(
                    f"EcgRecord.device_measurements has unknown key {key!r}; "
                    f"allowed: {', '.join(MEASUREMENT_KEYS)}"
                )
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
            ):
                raise EcgRecordError(
                    f"EcgRecord.device_measurements[{key!r}] must be a finite number, got {value!r}"
                )
            checked[key] = float(value)
        object.__setattr__(self, "device_measurements", checked)

    def _check_device_extras(self) -> None:
        per_lead = self.device_lead_measurements
        if not isinstance(per_lead, Mapping):
            raise EcgRecordError(
                f"EcgRecord.device_lead_measurements must be a mapping, got {per_lead!r}"
            )
        checked: dict[str, dict[str, float]] = {}
        for lead, values in per_lead.items():
            if lead not in self.leads or not isinstance(values, Mapping):
                raise EcgRecordError(
                    f"EcgRecord.device_lead_measurements[{lead!r}] must be a mapping for a lead "
                    f"of the record ({list(self.leads)})"
                )
            unknown = sorted(set(values) - set(LEAD_MEASUREMENT_KEYS))
            if unknown or not all(
                isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                for v in values.values()
            ):
                raise EcgRecordError(
                    f"EcgRecord.device_lead_measurements[{lead!r}] must map "
                    f"{', '.join(LEAD_MEASUREMENT_KEYS)} to finite numbers, got {dict(values)!r}"
                )
            checked[lead] = {key: float(value) for key, value in values.items()}
        object.__setattr__(self, "device_lead_measurements", checked)
        spikes = self.device_pacemaker_spikes
        if not isinstance(spikes, tuple) or not all(
            isinstance(s, EcgPacemakerSpike) for s in spikes
        ):
            raise EcgRecordError(
                f"EcgRecord.device_pacemaker_spikes must be a tuple of EcgPacemakerSpike, got "
                f"{spikes!r}"
            )

    @property
    def n_samples(self) -> int:
        """Number of samples per lead."""
        return int(self.samples_uv.shape[1])

    @property
    def duration_s(self) -> float:
        """Recording duration in seconds (``n_samples / sampling_rate_hz``)."""
        return self.n_samples / self.sampling_rate_hz

    def lead(self, name: str) -> npt.NDArray[np.float64]:
        """Return one lead's samples.

        Parameters
        ----------
        name
            Lead name as in :attr:`leads` (``"II"``, ``"aVF"``, ``"V1"``, …).

        Returns
        -------
        numpy.ndarray
            Read-only view, microvolts, shape ``(n_samples,)``.

        Raises
        ------
        KeyError
            The record has no lead of that name.
        """
        try:
            index = self.leads.index(name)
        except ValueError:
            raise KeyError(f"no lead {name!r} in this record; leads: {list(self.leads)}") from None
        return self.samples_uv[index]
