"""WFDB records as the PhysioNet/CinC Challenge 2021 published them: MATLAB v4 signal files,
record lines with a base date like ``05-May-2020`` and record names like ``E07500.mat``."""

from __future__ import annotations

import struct
from datetime import datetime

import numpy as np
import pytest

from ecg.errors import EcgFormatError
from ecg.formats import detect_format, read_ecg
from ecg.formats.wfdb import read_wfdb
from ecg.record import EcgFormat
from tests.ecg_file import ECG12_DEV

NAMES = sorted(p.stem for p in (ECG12_DEV / "original_headers").glob("*.hea"))


def _files(name: str, *, original: bool) -> dict[str, bytes]:
    folder = ECG12_DEV / ("original_headers" if original else "records")
    return {
        f"{name}.hea": (folder / f"{name}.hea").read_bytes(),
        f"{name}.mat": (ECG12_DEV / "records" / f"{name}.mat").read_bytes(),
    }


@pytest.mark.parametrize("name", NAMES)
def test_original_header_reads_the_same_samples_as_the_cleaned_one(name: str) -> None:
    original = read_wfdb(_files(name, original=True))
    cleaned = read_wfdb(_files(name, original=False))
    assert original.leads == cleaned.leads
    assert original.samples_uv.shape == (12, 5000)
    assert np.array_equal(original.samples_uv, cleaned.samples_uv)


def test_base_date_in_the_challenge_layout_is_read() -> None:
    record = read_wfdb(_files("JS20000", original=True))
    assert record.acquired_at == datetime(2021, 3, 26, 15, 14, 37)
    assert not any("not understood" in w for w in record.warnings)


def test_record_name_with_an_extension_is_read_with_a_warning() -> None:
    record = read_wfdb(_files("E07500", original=True))
    assert any("'E07500.mat' carries a file extension" in w for w in record.warnings)
    assert record.acquired_at == datetime(2020, 5, 5, 9, 49, 17)
    # 1000 ADC units per mV, baseline 0: the first sample of lead I is -68 units.
    assert record.samples_uv[record.leads.index("I"), 0] == pytest.approx(-68.0)


def test_original_header_is_recognised_as_wfdb() -> None:
    header = (ECG12_DEV / "original_headers" / "E07500.hea").read_bytes()
    assert detect_format(header) is EcgFormat.WFDB
    related = {"E07500.mat": (ECG12_DEV / "records" / "E07500.mat").read_bytes()}
    assert read_ecg(header, "E07500.hea", related_files=related).duration_s == 10.0


def test_unknown_base_date_is_ignored_with_a_warning() -> None:
    files = _files("HR06000", original=True)
    files["HR06000.hea"] = files["HR06000.hea"].replace(b"04-Jun-2020 15:11:55", b"Jun 4th 2020")
    record = read_wfdb(files)
    assert record.acquired_at is None
    assert any("'Jun 4th 2020' not understood" in w for w in record.warnings)


def test_samples_by_signals_matrix_is_read_too() -> None:
    """A matrix stored transposed (5000 x 12, signal after signal) gives the same leads."""
    files = _files("HR06001", original=False)
    mat = files["HR06001.mat"]
    frames = np.frombuffer(mat[24:], dtype="<i2").reshape(5000, 12)
    transposed = struct.pack("<5i", 30, 5000, 12, 0, 4) + b"val\0" + frames.T.tobytes()
    expected = read_wfdb(files)
    files["HR06001.mat"] = transposed
    assert np.array_equal(read_wfdb(files).samples_uv, expected.samples_uv)


@pytest.mark.parametrize(
    ("header", "words"),
    [
        (struct.pack("<5i", 20, 12, 5000, 0, 4), "not a little-endian int16 MATLAB v4 matrix"),
        (struct.pack("<5i", 30, 11, 5000, 0, 4), "holds a 11 x 5000 matrix, not 12 signals"),
    ],
)
def test_mat_file_of_another_type_or_shape_is_refused(header: bytes, words: str) -> None:
    files = _files("HR06002", original=False)
    files["HR06002.mat"] = header + files["HR06002.mat"][20:]
    with pytest.raises(EcgFormatError, match=words):
        read_wfdb(files)


def test_truncated_mat_file_is_refused() -> None:
    files = _files("HR06003", original=True)
    files["HR06003.mat"] = files["HR06003.mat"][:-100]
    with pytest.raises(EcgFormatError, match="shorter than its matrix"):
        read_wfdb(files)
