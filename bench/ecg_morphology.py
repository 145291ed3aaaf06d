"""Conduction and morphology statements against the cardiologists' labels of ecg12-dev.

Runs the whole analysis on each labelled 12-lead record of ``../shared/data/ecg12-dev`` and
prints, per class, the records labelled and stated, sensitivity and positive predictivity,
then the false suspected-STEMI alerts on the records without an ST-elevation label (and
how many the former J + 60 ms reading of the criterion raised).
Development data: the figures show what the criteria do, they are not a score to tune to.

    PYTHONPATH=$PWD .venv/bin/python bench/ecg_morphology.py [--show]
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
from scipy import io

from ecg import EcgFormat, EcgRecord
from ecg.analysis import analyze_ecg
from ecg.record import EcgPatient, Sex
from ecg.statements import meets_stemi_criteria

DEV = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "ecg12-dev").resolve()
LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")

#: Class: (SNOMED CT codes of the label, statement codes that state it).
CLASSES: dict[str, tuple[set[str], set[str]]] = {
    "RBBB (complete)": ({"59118001", "713427006"}, {"RBBB"}),
    "IRBBB": ({"713426002"}, {"INCOMPLETE_RBBB"}),
    "LBBB": ({"164909002", "733534002"}, {"LBBB"}),
    "LAFB": ({"445118002"}, {"LAFB"}),
    "NSIVCB": ({"698252002"}, {"IVCD"}),
    "LVH (incl. voltage)": ({"164873001", "55827005"}, {"LVH"}),
    "RVH": ({"89792004"}, {"RVH"}),
    "low voltage": ({"251146004"}, {"LOW_VOLTAGE"}),
    "Q wave abnormal": (
        {"164917005"},
        {"Q_WAVES_ANTERIOR", "Q_WAVES_LATERAL", "Q_WAVES_INFERIOR"},
    ),
    "ST depression": ({"429622005"}, {"ST_DEPRESSION"}),
    "T inversion": ({"59931005"}, {"T_WAVE_INVERSION"}),
    "ST elevation": ({"164931005"}, {"ST_ELEVATION_STEMI_CRITERIA"}),
    "long QT": ({"111975006"}, {"LONG_QTC"}),
}
STE_CODES = {"164931005"}


def read_record(name: str, age: str, sex: str) -> EcgRecord:
    """A record of ecg12-dev: the MATLAB v4 ``val`` array, 1000 units per mV, 500 Hz."""
    val = io.loadmat(str(DEV / "records" / f"{name}.mat"))["val"].astype(np.float64)
    patient = EcgPatient(
        sex={"Male": Sex.MALE, "Female": Sex.FEMALE}.get(sex),
        age_years=float(age) if age.replace(".", "", 1).isdigit() else None,
    )
    return EcgRecord(
        leads=LEADS,
        samples_uv=val,
        sampling_rate_hz=500.0,
        source_format=EcgFormat.WFDB,
        patient=patient,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show", action="store_true", help="print each record's codes")
    args = parser.parse_args()
    labels = DEV / "labels.csv"
    if not labels.is_file():
        print(f"ecg12-dev is not present ({DEV}): nothing to score", file=sys.stderr)
        return 1
    rows = list(csv.DictReader(labels.open(encoding="utf-8")))
    stated: dict[str, set[str]] = {}
    stemi: dict[str, bool] = {}
    before: dict[str, bool] = {}
    truth: dict[str, set[str]] = {}
    for row in rows:
        name = row["record"]
        analysis = analyze_ecg(read_record(name, row["age"], row["sex"]))
        stated[name] = {s.code.value for s in analysis.statements}
        stemi[name] = analysis.suspected_stemi
        # the criterion as it was read before: J + 60 ms, whatever the QRS
        sex = {"Male": "M", "Female": "F"}.get(row["sex"])
        age = float(row["age"]) if row["age"].isdigit() else None
        before[name] = bool(meets_stemi_criteria(analysis.st_deviation_uv, sex=sex, age_years=age))
        truth[name] = set(row["snomed_ct"].split(";"))
        if args.show:
            print(f"{name:8} {row['labels_abbr']:40} {' '.join(sorted(stated[name]))}")
    print(f"data: {DEV} ({len(rows)} records)")
    print(f"{'class':22} {'labelled':>8} {'stated':>6} {'TP':>4} {'Se':>6} {'+P':>6}")
    for label, (snomed, codes) in CLASSES.items():
        positive = {n for n in truth if truth[n] & snomed}
        called = {n for n in stated if stated[n] & codes}
        tp = len(positive & called)
        se = f"{tp / len(positive):.2f}" if positive else "-"
        ppv = f"{tp / len(called):.2f}" if called else "-"
        print(f"{label:22} {len(positive):8} {len(called):6} {tp:4} {se:>6} {ppv:>6}")
    without = [n for n in truth if not truth[n] & STE_CODES]
    false_alarms = [n for n in without if stemi[n]]
    print(
        f"false suspected-STEMI alerts: {len(false_alarms)} of {len(without)} records without "
        f"ST elevation{' (' + ', '.join(false_alarms) + ')' if false_alarms else ''}"
    )
    print(f"  (J + 60 ms criterion on every QRS, as before: {sum(before[n] for n in without)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
