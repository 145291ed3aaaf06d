"""Render time and peak memory of the 12-lead sheet (PNG and PDF) and the DICOM export.

Usage::

    .venv/bin/python bench/ecg_render.py              # 300 dpi, 5 runs each
    .venv/bin/python bench/ecg_render.py --dpi 150 --runs 10

The record is a 10-s, 12-lead, 500 Hz ECG (GE MUSE example 1, from the repository's
tests/data/ecg) with a Chinese header. Times are the median of the runs after one
warm-up; peak memory is the largest traced Python/numpy allocation during one call
(tracemalloc; opencv's and Pillow's own buffers are not traced) and the process's maximum
resident set size at the end.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ecg_data import VENDORED
from ecg import EcgRecord, read_ecg
from ecg.dicom_export import to_dicom_waveform
from ecg.render import SheetHeader, render_pdf, render_png

FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
EXAMPLE = VENDORED / "formats" / "ge_muse_xml" / "braveheart_example1.xml"


def ten_second_record() -> EcgRecord:
    return read_ecg(EXAMPLE.read_bytes(), EXAMPLE.name)


def measure(function: Callable[[], bytes], runs: int) -> tuple[float, float, int]:
    """Median and best seconds over `runs`, and traced peak bytes of one call."""
    function()  # warm-up: imports, font face lookup
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    size = len(function())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del size
    return statistics.median(times), min(times), peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dpi", type=int, default=300)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if not FONT.is_file():
        sys.exit(f"{FONT} is missing: install the Debian package fonts-noto-cjk")
    font = FONT.read_bytes()
    record = ten_second_record()
    header = SheetHeader.from_record(
        record,
        facility="淮滨县新里镇卫生院",
        patient_name="王小明",
        patient_id="HB-XC01-0042",
        statements=("窦性心动过缓", "左心室高电压"),
    )
    cases: dict[str, Callable[[], bytes]] = {
        "PNG": lambda: render_png(record, header=header, font_bytes=font, dpi=args.dpi),
        "PDF": lambda: render_pdf(record, header=header, font_bytes=font, dpi=args.dpi),
        "DICOM": lambda: to_dicom_waveform(
            record,
            patient_id="HB-XC01-0042",
            patient_name="王^小明",
            fallback_acquired_at=datetime(2024, 3, 1, 9, 0),
        ),
    }
    print(
        f"record: {len(record.leads)} leads, {record.duration_s:g} s at "
        f"{record.sampling_rate_hz:g} Hz; sheet at {args.dpi} dpi; {args.runs} runs"
    )
    for name, function in cases.items():
        median, best, peak = measure(function, args.runs)
        size = len(function())
        print(
            f"{name:6s} median {median * 1000:7.1f} ms  best {best * 1000:7.1f} ms  "
            f"traced peak {peak / 2**20:6.1f} MiB  output {size / 1024:7.1f} KiB"
        )
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"process max RSS {max_rss:.1f} MiB")


if __name__ == "__main__":
    main()
