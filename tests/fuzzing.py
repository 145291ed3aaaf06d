"""Fuzz targets shared by the suite (a few hundred cases each) and ``bench/fuzz.py`` (10,000).

A target is a function of one input, the inputs hypothesis draws for it, and the errors that
count as a clear refusal. The contract every target is held to: a result or one of those
errors, never another exception, within a time and a memory bound per case.

Byte inputs are mutations of real valid files (the repository's ECG files, pydicom's test
files): bit flips, interesting integers written over length fields, deleted, duplicated and
inserted runs, cuts; numbers in text formats replaced by extreme ones. Positions favour the
first kilobytes, where headers, section tables and element lengths are. Checksums are
recomputed afterwards where a format has them, so the mutation reaches the decoder behind.
"""

from __future__ import annotations

import binascii
import hashlib
import random
import re
import struct
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pydicom.data
from hypothesis import strategies as st

from ecg import EcgFormatError, detect_format, read_ecg
from ecg.formats import (
    read_contec_ecg90a,
    read_csv,
    read_dicom_waveform,
    read_ge_muse,
    read_hl7_aecg,
    read_philips_xml,
    read_scp_ecg,
    read_scp_ecg_healforce,
    read_wfdb,
)
from teleradiology.core import uploads as upload_rules
from teleradiology.core.dicom import (
    check_inflated_size,
    instance_identity,
    parse_part10,
    parse_part10_file,
)
from teleradiology.core.errors import InvalidDicom, ServiceError
from tests.ecg_file import FORMATS

#: A case taking longer than this is a hang, not a slow input (the bench reports real times).
CASE_TIME_BOUND_S = 10.0
#: The most the resident set may grow during one case.
CASE_MEMORY_BOUND_BYTES = 256 * 1024**2

PYDICOM_FILES = Path(pydicom.data.__file__).parent / "test_files"
#: pydicom's own small test files: every transfer syntax family the clinics send (native
#: little and big endian, implicit VR, deflate, JPEG, JPEG 2000, JPEG-LS, RLE), SR, RT, and
#: files without meta or with odd sequences.
DICOM_SEEDS = (
    "CT_small.dcm",
    "MR_small.dcm",
    "MR_small_implicit.dcm",
    "MR_small_bigendian.dcm",
    "MR_small_RLE.dcm",
    "JPEG2000.dcm",
    "SC_rgb_jpeg_dcmtk.dcm",
    "JPEGLSNearLossless_08.dcm",
    "SC_rgb_small_odd.dcm",
    "image_dfl.dcm",
    "rtplan.dcm",
    "reportsi.dcm",
    "test-SR.dcm",
    "UN_sequence.dcm",
    "nested_priv_SQ.dcm",
    "no_meta.dcm",
)
_DEFLATED_SEEDS = ("image_dfl.dcm",)

_INTERESTING_INTS = (
    0,
    1,
    2,
    0x7F,
    0x80,
    0xFF,
    0x100,
    0x7FFF,
    0x8000,
    0xFFFF,
    0x10000,
    0x7FFFFFFF,
    0x80000000,
    0xFFFFFFFE,
    0xFFFFFFFF,
)
_INTERESTING_NUMBERS = (
    b"0",
    b"-1",
    b"1",
    b"65535",
    b"2147483648",
    b"-2147483649",
    b"99999999999999999999",
    b"1e308",
    b"-1e308",
    b"nan",
    b"inf",
    b"0.0000001",
    b"",
    b"x",
)
_NUMBER = re.compile(rb"-?\d+(?:\.\d+)?")
#: Where headers live: half the positions fall in the first bytes of the file.
_HEAD_BYTES = 4096


# --- mutation ----------------------------------------------------------------------------


def _position(data: bytearray, rnd: random.Random) -> int:
    if not data:
        return 0
    if rnd.random() < 0.5:
        return rnd.randrange(min(len(data), _HEAD_BYTES))
    return rnd.randrange(len(data))


def _flip_bit(data: bytearray, rnd: random.Random) -> None:
    if data:
        data[_position(data, rnd)] ^= 1 << rnd.randrange(8)


def _set_byte(data: bytearray, rnd: random.Random) -> None:
    if data:
        data[_position(data, rnd)] = rnd.choice((0, 0xFF, 0x7F, 0x80, rnd.randrange(256)))


def _set_integer(data: bytearray, rnd: random.Random) -> None:
    """An interesting 2- or 4-byte integer over what is there (a length, a count, an offset)."""
    width = rnd.choice((2, 4))
    at = _position(data, rnd)
    if at + width > len(data):
        return
    value = rnd.choice((*_INTERESTING_INTS, len(data), len(data) - at, rnd.randrange(1 << 16)))
    value &= (1 << (8 * width)) - 1
    data[at : at + width] = value.to_bytes(width, rnd.choice(("little", "big")))


def _delete(data: bytearray, rnd: random.Random) -> None:
    at = _position(data, rnd)
    del data[at : at + rnd.choice((1, 2, 4, 8, rnd.randrange(1, 512)))]


def _insert(data: bytearray, rnd: random.Random) -> None:
    at = _position(data, rnd)
    if rnd.random() < 0.5 and data:
        start = _position(data, rnd)
        chunk = bytes(data[start : start + rnd.randrange(1, 256)])  # a duplicated run
    else:
        chunk = bytes(rnd.randrange(256) for _ in range(rnd.choice((1, 2, 4, 8, 32))))
    data[at:at] = chunk


def _cut(data: bytearray, rnd: random.Random) -> None:
    del data[rnd.randrange(len(data) + 1) :]


def _replace_number(data: bytearray, rnd: random.Random) -> None:
    """An extreme value in place of a number of a text format (a count, a rate, a sample)."""
    at = _position(data, rnd)
    match = _NUMBER.search(data, at) or _NUMBER.search(data)
    if match is not None:
        data[match.start() : match.end()] = rnd.choice(_INTERESTING_NUMBERS)


def _duplicate_line(data: bytearray, rnd: random.Random) -> None:
    at = _position(data, rnd)
    start = data.rfind(b"\n", 0, at) + 1
    end = data.find(b"\n", at)
    if end != -1:
        data[start:start] = data[start : end + 1]


_BINARY_OPS = (_flip_bit, _set_byte, _set_integer, _set_integer, _delete, _insert, _cut)
_TEXT_OPS = (*_BINARY_OPS, _replace_number, _replace_number, _replace_number, _duplicate_line)


def mutate(seed: bytes, rnd: random.Random, *, text: bool = False) -> bytes:
    """One to eight random edits of ``seed`` (a cut is rarer than the other edits)."""
    data = bytearray(seed)
    ops = _TEXT_OPS if text else _BINARY_OPS
    for _ in range(rnd.randint(1, 8)):
        op = rnd.choice(ops)
        if op is _cut and rnd.random() < 0.7:
            op = _flip_bit
        op(data, rnd)
    return bytes(data)


class Mutant(bytes):
    """Mutated bytes that print as their size and digest (hypothesis prints failing inputs)."""

    def __repr__(self) -> str:
        return f"<{len(self)} bytes, sha256 {hashlib.sha256(self).hexdigest()[:16]}>"


def mutants(
    seeds: Sequence[bytes], *, fix: Callable[[bytes], bytes] | None = None, text: bool = False
) -> st.SearchStrategy[bytes]:
    """Mutations of the seeds (or a seed untouched, now and then), ``fix``ed afterwards."""

    def build(index: int, rnd: random.Random, untouched: bool) -> bytes:
        data = seeds[index] if untouched else mutate(seeds[index], rnd, text=text)
        return Mutant(fix(data) if fix is not None else data)

    return st.builds(
        build,
        st.integers(0, len(seeds) - 1),
        st.randoms(use_true_random=False),
        st.integers(0, 49).map(lambda n: n == 0),
    )


# --- checksums, recomputed so mutations reach the decoders ---------------------------------


def fix_scp_crcs(data: bytes) -> bytes:
    """Recompute every SCP-ECG section CRC and the record CRC, so structural checks are
    reached."""
    if len(data) < 16:
        return data
    out = bytearray(data)
    table_end = min(6 + struct.unpack_from("<I", data, 10)[0], len(data) - 10)
    for entry in range(6 + 16, table_end, 10):
        _, length, index = struct.unpack_from("<HII", data, entry)
        start = index - 1
        if length >= 2 and start >= 0 and start + length <= len(data):
            out[start : start + 2] = struct.pack(
                "<H", binascii.crc_hqx(bytes(out[start + 2 : start + length]), 0xFFFF)
            )
    out[0:2] = struct.pack("<H", binascii.crc_hqx(bytes(out[2:]), 0xFFFF))
    return bytes(out)


def fix_healforce_crc(data: bytes) -> bytes:
    """Recompute the CRC of a Healforce SCP file over the bytes it says it uses."""
    if len(data) < 6:
        return data
    used = struct.unpack_from("<H", data, 4)[0]
    return struct.pack(">H", binascii.crc_hqx(data[2:used], 0)) + data[2:]


# --- the contract --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Case:
    """How one input went: refused or not, how long, how much the resident set grew; the
    unexpected exception (with its traceback) when the contract was broken."""

    refused: bool
    seconds: float
    #: How much the resident set grew during the call, at its highest.
    peak_bytes: int
    #: The process's resident set at its highest during the call.
    rss_high_bytes: int
    unexpected: str | None = None


@dataclass(frozen=True, kw_only=True)
class Target:
    """What one fuzz target calls, with what, and which errors are a clear refusal."""

    name: str
    run: Callable[[Any], object]
    inputs: st.SearchStrategy[Any]
    refusals: tuple[type[BaseException], ...]
    #: Checks a result (not a refusal) must pass; raises AssertionError.
    check: Callable[[Any, Any], None] | None = field(default=None)
    #: For a target of bytes: the valid files its mutations start from, and what is
    #: recomputed after a mutation (checksums), for a coverage-guided fuzzer
    #: (``bench/fuzz_atheris.py``) to start from the same place.
    seeds: tuple[bytes, ...] = ()
    fix: Callable[[bytes], bytes] | None = None


_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _rss_kib(field_name: str) -> int:
    for line in _STATUS.read_text().splitlines():
        if line.startswith(field_name):
            return int(line.split()[1])
    return 0


def run_case(target: Target, value: Any) -> Case:
    """Call the target on one input and say how it went (never raises for the input).

    Memory is the growth of the resident set during the call: its high-water mark is reset
    before (Linux ``clear_refs``), so what numpy, zlib or opencv allocate counts too.
    """
    refused = False
    unexpected: str | None = None
    _CLEAR_REFS.write_text("5")
    before = _rss_kib("VmRSS:")
    started = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # what it tolerates, a reader may warn about
            result = target.run(value)
        if target.check is not None:
            target.check(value, result)
    except target.refusals:
        refused = True
    except Exception:
        unexpected = traceback.format_exc()
    seconds = time.perf_counter() - started
    high = _rss_kib("VmHWM:")
    return Case(
        refused=refused,
        seconds=seconds,
        peak_bytes=max(0, high - before) * 1024,
        rss_high_bytes=high * 1024,
        unexpected=unexpected,
    )


def keep_failure(target: Target, value: Any) -> Path | None:
    """Write a failing byte input where it can be replayed from; None for other inputs."""
    if not isinstance(value, bytes):
        return None
    folder = Path(tempfile.gettempdir()) / "telemed-fuzz-failures"
    folder.mkdir(exist_ok=True)
    path = folder / f"{target.name}-{hashlib.sha256(value).hexdigest()[:16]}.bin"
    path.write_bytes(value)
    return path


def assert_contract(target: Target, value: Any) -> Case:
    """`run_case`, failing the test on an unexpected exception or a broken bound."""
    case = run_case(target, value)
    if case.unexpected is not None:
        kept = keep_failure(target, value)
        raise AssertionError(
            f"{target.name}: not a clear refusal (input kept in {kept}):\n{case.unexpected}"
        )
    if case.seconds >= CASE_TIME_BOUND_S:
        kept = keep_failure(target, value)
        raise AssertionError(f"{target.name}: one case took {case.seconds:.1f} s ({kept})")
    if case.peak_bytes >= CASE_MEMORY_BOUND_BYTES:
        kept = keep_failure(target, value)
        raise AssertionError(
            f"{target.name}: one case grew the process by "
            f"{case.peak_bytes / 1024**2:.0f} MiB ({kept})"
        )
    return case


# --- the targets -----------------------------------------------------------------------------


def _read(relative: str) -> bytes:
    return (FORMATS / relative).read_bytes()


_CSV = b"# sampling_rate_hz: 250\nI,II,III\n" + b"".join(
    b"%d,%d,%d\n" % (i, 2 * i, -i) for i in range(500)
)
_CSV_TIMED = b"time_ms;II [mV];V1\n" + b"".join(
    b"%d;%.3f;%d\n" % (2 * i, i / 100, i) for i in range(400)
)


@cache
def ecg_seeds() -> dict[str, tuple[bytes, ...]]:
    """The repository's real ECG files by reader, cut where long (the header is what varies)."""
    healforce = [_read(f"scp_ecg/healforce_6{n}.SCP") for n in (2, 3)]
    return {
        "scp": (_read("scp_ecg/ecgtoolkit_Example.scp"),),
        "healforce": tuple(d[: struct.unpack_from("<H", d, 4)[0]] for d in healforce),
        "contec": (
            *(d[:4000] + d[-37:] for d in (_read(f"contec_ecg90a/00000{n}.ECG") for n in (37, 53))),
            # as some carts write it: no zero trailer
            _read("contec_ecg90a/0000053.ECG")[: 43 + 16 * 250],
        ),
        "dicom_waveform": (_read("dicom_waveform/waveform_ecg.dcm"),),
        "ge_muse": tuple(_read(f"ge_muse_xml/braveheart_example{n}.xml") for n in (1, 2, 4)),
        "hl7_aecg": (_read("hl7_aecg/Example_aECG.xml"),),
        "philips": tuple(
            _read(f"philips_xml/{name}")
            for name in (
                "129DYPRG_v1.03.XML",
                "2020-5-18_15-48-11_v1.04.01.xml",
                "3191723_ZZDEMOPTONLY_v1.04.xml",
            )
        ),
        "csv": (_CSV, _CSV_TIMED),
        "wfdb_header": (_read("wfdb_12lead/s0010_re.hea"),),
    }


@cache
def _wfdb_signals() -> dict[str, bytes]:
    return {name: _read(f"wfdb_12lead/{name}") for name in ("s0010_re.dat", "s0010_re.xyz")}


def _read_wfdb_header(header: bytes) -> object:
    return read_wfdb({**_wfdb_signals(), "s0010_re.hea": header})


def _read_wfdb_signal(dat: bytes) -> object:
    files = {**_wfdb_signals(), "s0010_re.hea": ecg_seeds()["wfdb_header"][0]}
    return read_wfdb({**files, "s0010_re.dat": dat})


def _record_is_whole(_value: object, record: Any) -> None:
    assert record.samples_uv.shape[0] == len(record.leads)


@cache
def dicom_seeds() -> tuple[bytes, ...]:
    return tuple((PYDICOM_FILES / name).read_bytes() for name in DICOM_SEEDS)


def _parse_on_disk(data: bytes) -> object:
    with tempfile.NamedTemporaryFile(suffix=".dcm") as fp:
        fp.write(data)
        fp.flush()
        return parse_part10_file(Path(fp.name))


def _ecg_targets() -> list[Target]:
    seeds = ecg_seeds()
    every = tuple(s for key, group in seeds.items() if key != "wfdb_header" for s in group)
    readers: dict[str, tuple[Callable[[bytes], object], Callable[[bytes], bytes] | None]] = {
        "scp": (read_scp_ecg, fix_scp_crcs),
        "healforce": (read_scp_ecg_healforce, fix_healforce_crc),
        "contec": (read_contec_ecg90a, None),
        "dicom_waveform": (read_dicom_waveform, None),
        "ge_muse": (read_ge_muse, None),
        "hl7_aecg": (read_hl7_aecg, None),
        "philips": (read_philips_xml, None),
        "csv": (read_csv, None),
        "wfdb_header": (_read_wfdb_header, None),
    }
    text = {"ge_muse", "hl7_aecg", "philips", "csv", "wfdb_header"}
    targets = [
        Target(
            name="ecg.read_ecg",
            run=read_ecg,
            inputs=mutants(every, text=True),
            refusals=(EcgFormatError,),
            check=_record_is_whole,
            seeds=every,
        ),
        Target(
            name="ecg.detect_format",
            run=detect_format,
            inputs=mutants(every, text=True),
            refusals=(EcgFormatError,),
            seeds=every,
        ),
        Target(
            name="ecg.wfdb_signal",
            run=_read_wfdb_signal,
            inputs=mutants((_wfdb_signals()["s0010_re.dat"],)),
            refusals=(EcgFormatError,),
            seeds=(_wfdb_signals()["s0010_re.dat"],),
        ),
    ]
    for key, (reader, fix) in readers.items():
        targets.append(
            Target(
                name=f"ecg.{key}",
                run=reader,
                inputs=mutants(seeds[key], fix=fix, text=key in text),
                refusals=(EcgFormatError,),
                check=_record_is_whole,
                seeds=seeds[key],
                fix=fix,
            )
        )
    return targets


def _dicom_targets() -> list[Target]:
    seeds = dicom_seeds()
    deflated = tuple((PYDICOM_FILES / name).read_bytes() for name in _DEFLATED_SEEDS)
    return [
        Target(
            name="dicom.parse_part10",
            run=parse_part10,
            inputs=mutants(seeds),
            refusals=(InvalidDicom,),
            seeds=seeds,
        ),
        Target(
            name="dicom.parse_part10_file",
            run=_parse_on_disk,
            inputs=mutants(seeds),
            refusals=(InvalidDicom,),
            seeds=seeds,
        ),
        # Whether a file is an instance, for the upload: an answer, never an error.
        Target(
            name="dicom.instance_identity",
            run=instance_identity,
            inputs=mutants(seeds),
            refusals=(),
            seeds=seeds,
        ),
        Target(
            name="dicom.check_inflated_size",
            run=check_inflated_size,
            inputs=mutants(deflated),
            refusals=(InvalidDicom,),
            seeds=deflated,
        ),
    ]


# --- the resumable upload's rules --------------------------------------------------------------


def _ranges_of(size: int) -> st.SearchStrategy[tuple[str, int]]:
    """Content-Range headers for a file of ``size`` bytes, near and past its ends."""
    edge = st.one_of(st.integers(0, size + 1), st.sampled_from([0, size - 1, size, size + 1]))
    header = st.builds(lambda a, b: f"bytes {a}-{b}/{size}", edge, edge)
    return st.tuples(header, st.just(size))


_RANGE_TEXT = st.one_of(
    st.builds(
        lambda a, b, size, pad: f"{pad}bytes {a}-{b}/{size}{pad}",
        st.integers(-5, 2**70),
        st.integers(-5, 2**70),
        st.integers(0, 2**70),
        st.sampled_from(["", " ", "\t", "\n"]),
    ),
    st.from_regex(r"bytes [0-9\-]{0,30}/[0-9]{0,30}", fullmatch=True),
    st.text(max_size=60),
)


def _byte_range(value: tuple[str, int]) -> tuple[int, int]:
    return upload_rules.byte_range(*value)


def _range_is_inside(value: tuple[str, int], result: tuple[int, int]) -> None:
    _, size = value
    start, end = result
    assert 0 <= start < end <= size
    assert end - start <= upload_rules.MAX_BODY_BYTES


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True)
    | st.text(max_size=80),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=20), inner, max_size=4)
    ),
    max_leaves=12,
)
_HEX = st.text("0123456789abcdefABCDEF", min_size=60, max_size=68)
_MANIFEST_LINE = st.fixed_dictionaries(
    {
        "sop_instance_uid": st.one_of(
            st.from_regex(r"[0-9]{1,8}(\.[0-9]{1,8}){0,8}", fullmatch=True), _JSON
        ),
        "size": st.one_of(st.integers(-(2**64), 2**64), _JSON),
        "sha256": st.one_of(_HEX, _JSON),
    },
    optional={"extra": _JSON},
)
_VALID_LINE = st.fixed_dictionaries(
    {
        "sop_instance_uid": st.from_regex(r"[1-9][0-9]{0,5}(\.[0-9]{1,6}){1,6}", fullmatch=True),
        "size": st.integers(-1, 2**30),
        "sha256": st.text("0123456789abcdefABCDEF", min_size=64, max_size=64),
    }
)
_MANIFEST = st.one_of(
    st.lists(_VALID_LINE, min_size=1, max_size=6),
    st.lists(st.one_of(_VALID_LINE, _MANIFEST_LINE, _JSON), max_size=6),
    _JSON,
)


def _manifest(value: Any) -> object:
    return upload_rules.manifest(value, 512 * 1024**2)


def _manifest_is_unique(_value: Any, items: Any) -> None:
    uids = [item.sop_instance_uid for item in items]
    assert len(uids) == len(set(uids))
    assert uids
    assert all(0 <= item.size_bytes <= 512 * 1024**2 for item in items)


_RANGES = st.tuples(
    st.lists(st.tuples(st.integers(0, 300), st.integers(0, 300)), max_size=8),
    st.integers(1, 300),  # a manifest's files have at least one byte
)


def _covers(value: tuple[list[tuple[int, int]], int]) -> bool:
    ranges, size = value
    return upload_rules.covers(sorted((a, b) for a, b in ranges if a < b), size)


def _covers_as_a_set_says(value: tuple[list[tuple[int, int]], int], result: bool) -> None:
    ranges, size = value
    held = {byte for start, end in ranges for byte in range(start, end)}
    assert result == held.issuperset(range(size))


def _upload_targets() -> list[Target]:
    return [
        Target(
            name="upload.content_range",
            run=_byte_range,
            inputs=st.one_of(
                st.integers(1, 2**36).flatmap(_ranges_of),
                st.tuples(_RANGE_TEXT, st.integers(0, 2**40)),
            ),
            refusals=(ServiceError,),
            check=_range_is_inside,
        ),
        Target(
            name="upload.manifest",
            run=_manifest,
            inputs=_MANIFEST,
            refusals=(ServiceError,),
            check=_manifest_is_unique,
        ),
        Target(
            name="upload.ranges_cover",
            run=_covers,
            inputs=_RANGES,
            refusals=(),
            check=_covers_as_a_set_says,
        ),
    ]


@cache
def targets() -> dict[str, Target]:
    """Every pure fuzz target by name (the service paths are fuzzed in integration tests)."""
    return {t.name: t for t in (*_ecg_targets(), *_dicom_targets(), *_upload_targets())}
