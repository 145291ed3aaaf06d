"""Statements against the cardiologists' labels of the 50 development 12-lead ECGs.

Usage::

    .venv/bin/python bench/ecg_statements.py

Scores the nine classes of the interpretation target (normal, AF, first-degree AV block,
LBBB, RBBB, PAC, PVC, ST depression, ST elevation): per class sensitivity (Se), positive
predictive value (+P) and F1, and their macro F1; then the other labelled classes a statement
names; the share of recordings without ST elevation that raise a suspected STEMI; and the
statements of every format file with the time each analysis took. A class absent from the
labels has no Se (and no F1): the macro F1 is over the classes present.

The records are the repository's copy (tests/data/ecg12-dev), else the shared collection's
(../shared/data/ecg12-dev). They are development data: the target is met on held-out
recordings, so the figures here say what the rules do, not what they score.
"""

from __future__ import annotations

import csv
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ecg_data import REPO, VENDORED
from ecg.analysis import EcgAnalysis, analyze_ecg
from teleradiology.ecg_cli import read_path

DATA = (REPO / "tests" / "data" / "ecg12-dev", (REPO / ".." / "shared" / "data" / "ecg12-dev"))


@dataclass(frozen=True)
class ScoredClass:
    """A class: its name, the SNOMED CT codes that label it, the statement codes naming it."""

    name: str
    snomed: frozenset[str]
    statements: frozenset[str]


def _cls(name: str, snomed: str, statements: str) -> ScoredClass:
    return ScoredClass(name, frozenset(snomed.split()), frozenset(statements.split()))


#: The nine target classes. Normal is a recording labelled sinus rhythm and nothing else.
#: Statement codes of earlier versions are kept in the lists so a run of an older tree scores.
TARGET = (
    _cls("normal", "426783006", "NORMAL_ECG"),
    _cls("AF", "164889003", "ATRIAL_FIBRILLATION IRREGULAR_RHYTHM_POSSIBLE_AF"),
    _cls("IAVB", "270492004", "FIRST_DEGREE_AV_BLOCK LONG_PR"),
    _cls("LBBB", "164909002 733534002", "LBBB"),
    _cls("RBBB", "59118001 713427006", "RBBB"),
    _cls("PAC", "284470004 63593006", "PAC PREMATURE_BEATS"),
    _cls("PVC", "427172004 17338001", "PVC PREMATURE_BEATS"),
    _cls("STD", "429622005", "ST_DEPRESSION"),
    _cls("STE", "164931005", "ST_ELEVATION_STEMI_CRITERIA ST_ELEVATION"),
)
#: Other labelled classes a statement names.
OTHER = (
    _cls("sinus rhythm (any)", "426783006", "SINUS_RHYTHM"),
    _cls("sinus tachycardia", "427084000", "SINUS_TACHYCARDIA"),
    _cls("sinus bradycardia", "426177001", "SINUS_BRADYCARDIA"),
    _cls("sinus arrhythmia", "427393009", "SINUS_ARRHYTHMIA"),
    _cls("atrial tachycardia", "713422000", "ATRIAL_TACHYCARDIA SUPRAVENTRICULAR_TACHYCARDIA"),
    _cls("atrial flutter", "164890007", "ATRIAL_FLUTTER"),
    _cls("incomplete RBBB", "713426002", "INCOMPLETE_RBBB"),
    _cls("LVH", "164873001 55827005", "LVH"),
    _cls("RVH", "89792004", "RVH"),
    _cls("T-wave inversion", "59931005", "T_WAVE_INVERSION"),
    _cls("long QT", "111975006", "LONG_QTC"),
    _cls("NSIVCB", "698252002", "IVCD WIDE_QRS NONSPECIFIC_IVCD"),
)


@dataclass(frozen=True)
class Scored:
    record: str
    labels: frozenset[str]
    codes: frozenset[str]
    suspected_stemi: bool


def _data_folder() -> Path:
    for folder in DATA:
        if (folder / "labels.csv").is_file():
            return folder.resolve()
    sys.exit(f"ecg12-dev is neither in {DATA[0]} nor in {DATA[1]}")


def _truth(cls: ScoredClass, labels: frozenset[str]) -> bool:
    if cls.name == "normal":
        return labels == cls.snomed
    return bool(labels & cls.snomed)


def _score(classes: tuple[ScoredClass, ...], rows: list[Scored]) -> list[float]:
    """Print Se, +P, F1 of each class; return the F1 of the classes present in the labels."""
    f1s: list[float] = []
    for cls in classes:
        tp = fp = fn = 0
        for row in rows:
            truth, said = _truth(cls, row.labels), bool(row.codes & cls.statements)
            tp += truth and said
            fp += said and not truth
            fn += truth and not said
        se = tp / (tp + fn) if tp + fn else None
        ppv = tp / (tp + fp) if tp + fp else None
        f1 = 2 * tp / (2 * tp + fp + fn) if tp + fn else None
        if f1 is not None:
            f1s.append(f1)

        def fmt(value: float | None) -> str:
            return "  -  " if value is None else f"{value:.2f}"

        print(
            f"  {cls.name:<20} n={tp + fn:<3} TP {tp:<3} FP {fp:<3} FN {fn:<3} "
            f"Se {fmt(se)}  +P {fmt(ppv)}  F1 {fmt(f1)}"
        )
    return f1s


def _analyse(path: Path) -> tuple[EcgAnalysis, float]:
    started = time.perf_counter()
    analysis = analyze_ecg(read_path(path))
    return analysis, time.perf_counter() - started


def _development(folder: Path) -> list[Scored]:
    rows: list[Scored] = []
    with (folder / "labels.csv").open(encoding="utf-8") as handle:
        for line in csv.DictReader(handle):
            labels = frozenset(code for code in line["snomed_ct"].split(";") if code)
            analysis, _ = _analyse(folder / "records" / f"{line['record']}.hea")
            codes = frozenset(s.code.value for s in analysis.statements)
            rows.append(Scored(line["record"], labels, codes, analysis.suspected_stemi))
    return rows


def _format_files() -> None:
    print("format files (statements, analysis time):")
    folder = VENDORED / "formats"
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix not in {".dat", ".xyz"})
    for path in paths:
        try:
            analysis, seconds = _analyse(path)
        except Exception as exc:  # a benchmark reports every failure and goes on
            print(f"  {path.relative_to(folder)}: error {exc}")
            continue
        codes = " ".join(s.code.value for s in analysis.statements)
        print(f"  {path.relative_to(folder)} ({seconds * 1000:.0f} ms): {codes}")


def main() -> None:
    folder = _data_folder()
    rows = _development(folder)
    print(f"data: {len(rows)} labelled records in {folder}")
    print("target classes:")
    f1s = _score(TARGET, rows)
    print(f"macro F1 over the {len(f1s)} target classes present: {sum(f1s) / len(f1s):.2f}")
    print("other labelled classes:")
    _score(OTHER, rows)
    ste = next(cls for cls in TARGET if cls.name == "STE")
    without = [row for row in rows if not row.labels & ste.snomed]
    with_ste = [row for row in rows if row.labels & ste.snomed]
    false = [row.record for row in without if row.suspected_stemi]
    share = 100 * len(false) / max(1, len(without))
    print(
        f"false suspected STEMI: {len(false)}/{len(without)} recordings without ST elevation "
        f"({share:.0f} %){': ' + ' '.join(false) if false else ''}"
    )
    alerted = sum(row.suspected_stemi for row in with_ste)
    print(f"STEMI alert on recordings with ST elevation: {alerted}/{len(with_ste)}")
    print("per record (labels | statements):")
    for row in rows:
        print(f"  {row.record}: {' '.join(sorted(row.labels))} | {' '.join(sorted(row.codes))}")
    _format_files()


if __name__ == "__main__":
    main()
