"""Fuzz: hostile DICOM, NIfTI and plugin inputs through `info` and `convert`, counted by outcome.

Generates ``--count`` mutated DICOM files from 19 seed files (pydicom's and pydicom-data's test
files: uncompressed, big endian, deflated, RLE, JPEG lossless / extended, JPEG-LS, JPEG 2000,
multi-frame, enhanced multi-frame, RT dose, colour; plus a small clean CT slice): byte flips,
truncation, wrong VR bytes and lengths, absurd sizes and counts, NaN / inf / zero geometry,
inconsistent bits, deep sequences. Files are put in folders beside a good 3-slice series (some
mutants share its series UID); every folder is read with ``info --json`` and every file with
``convert``, under a memory cap (RLIMIT_AS) and a timeout, in ``--jobs`` parallel workers. NIfTI
faults (gzip bomb, huge dims, odd dtypes, truncation) and hostile plugin folders (``plugins
check``) run as plain ``python main.py`` subprocesses.

Each run is one of: clean (an error message, no traceback) / success / traceback / hang /
signal / memory (MemoryError, bad_alloc). Also counted: skip reasons or messages that are not
one readable line (<= 500 characters, reasons <= 200, no control characters), successes with a non-finite
affine, folders whose good series was lost. The baseline each count is judged against is the
target: 0 tracebacks, hangs, signals, memory blow-ups, bad messages, bad outputs, lost series.

A worker process runs many commands (``main.main(argv)``, imports paid once) and is restarted
when it dies or hangs; the death is counted for the command it was running.

Run: ``.venv/bin/python bench/fuzz_inputs.py --count 10000 --jobs 2`` (``--out DIR`` keeps the
files; ``--seed`` changes them; ``--bundle-decoders`` decodes as the installed bundle does, GDCM
for JPEG Lossless). Last full run (2026-12-04, seed 13, 2 jobs on 2 shared cores, 777 s; every
50th command a fresh ``python main.py``, 258 of them):

                      clean  success  traceback  hang  signal  memory  bad message/output  lost series
    info on folders       0     2873          0     0       0       0                 0/0            0
    convert on files   6836     3164          0     0       0       0                 0/0            0
    NIfTI info/convert   28       16          0     0       0       0                 0/0            0
    plugins check        13        0          0     0       0       0                 0/0            0

Before the fixes that came with this script, 1,000 files gave 1 traceback (nibabel SVD on a 1e-320 pixel
spacing) and 2 signals (GDCM aborting on JPEG 2000); the first 10,000-file run after them found a
control-character patient name, the second a 999999-frame hang; ``--bundle-decoders`` on 3,000
files found a GDCM abort (BitsStored 1, 8-bit lossless JPEG) before GDCM moved to a child process.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import resource
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

SEED_NAMES = [
    "CT_small.dcm",
    "MR_small.dcm",
    "MR_small_RLE.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "MR_small_bigendian.dcm",
    "MR_small_implicit.dcm",
    "JPEG2000.dcm",
    "JPEGLSNearLossless_16.dcm",
    "JPGExtended.dcm",
    "image_dfl.dcm",
    "rtdose.dcm",
    "SC_rgb_rle.dcm",
    "JPEG-LL.dcm",
    "JPGLosslessP14SV1_1s_1f_8b.dcm",
    "emri_small.dcm",
    "emri_small_RLE.dcm",
    "emri_small_jpeg_2k_lossless.dcm",
    "liver.dcm",
]
OUTCOMES = ("clean", "success", "traceback", "hang", "signal", "memory")
DEFECTS = ("bad message", "bad output", "lost series")
MAX_MESSAGE_CHARS = 500
PLUGIN_TIMEOUT_S = 60.0


# ---------------------------------------------------------------- seeds and mutations


def seed_files(good: list[bytes]) -> list[tuple[str, bytes]]:
    """(name, bytes) of every seed, the clean CT slice first."""
    from pydicom.data import get_testdata_file

    seeds = [("good_slice.dcm", good[0])]
    for name in SEED_NAMES:
        path = get_testdata_file(name)
        if path is not None:
            seeds.append((name, Path(path).read_bytes()))
    return seeds


def good_series_bytes() -> list[bytes]:
    """Three 32 x 32 CT slices of one series (bench_dicom_load's phantom), as bytes."""
    from bench_dicom_load import write_ct_series

    with tempfile.TemporaryDirectory() as folder:
        write_ct_series(Path(folder), size=32, slices=3)
        return [path.read_bytes() for path in sorted(Path(folder).iterdir())]


def series_uid_of(data: bytes) -> str:
    import io

    import pydicom

    return str(pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).SeriesInstanceUID)


# Hostile values per attribute: sizes, counts, geometry, bits, rescale, syntax.
HOSTILE_VALUES: dict[str, list] = {
    "Rows": [0, 1, 3, 65535, 16384],
    "Columns": [0, 1, 65535, 16384],
    "NumberOfFrames": ["0", "-1", "999999", "2147483647", "nan", "3"],
    "BitsAllocated": [0, 1, 7, 12, 24, 64, 65535],
    "BitsStored": [0, 1, 17, 33, 255],
    "HighBit": [0, 40, 65535],
    "PixelRepresentation": [1, 2, 65535],
    "SamplesPerPixel": [0, 2, 3, 4, 255],
    "PlanarConfiguration": [1, 7],
    "PhotometricInterpretation": ["RGB", "PALETTE COLOR", "YBR_FULL", "\x01\x02", ""],
    "ImageOrientationPatient": [
        [0, 0, 0, 0, 0, 0],
        [1, 0, 0, 1, 0, 0],
        [1, 0, 0, -1, 0, 0],
        ["nan", 0, 0, 0, 1, 0],
        ["inf", 0, 0, 0, 1, 0],
        [1e308, 0, 0, 0, 1e308, 0],
        [1, 0, 0],
        [1e-320, 0, 0, 0, 1e-320, 0],
    ],
    "ImagePositionPatient": [["nan", 0, 0], ["inf", "-inf", 0], [1e308, 1e308, 1e308], [0, 0], []],
    "PixelSpacing": [[0, 0], [-1, -1], [1e308, 1e308], ["nan", 1], ["inf", "inf"], [1e-320, 1e-320], [5]],
    "SliceThickness": [0, -5, 1e308, "nan"],
    "SpacingBetweenSlices": [0, -5, 1e308, "inf"],
    "RescaleSlope": ["inf", "-inf", "nan", 1e308, 0, -1e308, 1e-320],
    "RescaleIntercept": ["inf", "nan", 1e308, -1e308],
    "WindowCenter": ["nan", 1e308],
    "WindowWidth": [0, "-inf"],
    "GantryDetectorTilt": [90, "nan", 1e308],
    "TransferSyntaxUID": [
        "1.2.840.10008.1.2.1",
        "1.2.840.10008.1.2.5",
        "1.2.840.10008.1.2.4.70",
        "1.2.840.10008.1.2.4.80",
        "1.2.840.10008.1.2.4.90",
        "1.2.840.10008.1.2.4.50",
        "1.2.840.10008.1.2.2",
        "1.2.3.4.bogus",
    ],
}


def set_attribute(data: bytes, keyword: str, value) -> bytes | None:
    """The file re-written by pydicom with one attribute set to a hostile value."""
    import io

    import pydicom

    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
        if keyword == "TransferSyntaxUID":
            ds.file_meta.TransferSyntaxUID = value
        elif keyword in ("ImageOrientationPatient", "ImagePositionPatient", "PixelSpacing"):
            ds.add_new(pydicom.datadict.tag_for_keyword(keyword), "DS", "\\".join(str(v) for v in value))
        elif keyword in (
            "NumberOfFrames",
            "RescaleSlope",
            "RescaleIntercept",
            "SliceThickness",
            "SpacingBetweenSlices",
            "WindowCenter",
            "WindowWidth",
            "GantryDetectorTilt",
        ):
            vr = "IS" if keyword == "NumberOfFrames" else "DS"
            ds.add_new(pydicom.datadict.tag_for_keyword(keyword), vr, str(value))
        elif keyword == "PhotometricInterpretation":
            ds.add_new(0x00280004, "CS", value)
        else:
            setattr(ds, keyword, value)
        if keyword in ("ImageOrientationPatient", "ImagePositionPatient", "PixelSpacing", "RescaleSlope"):
            _set_in_functional_groups(ds, keyword, value)
        buffer = io.BytesIO()
        with warnings.catch_warnings(action="ignore"):
            ds.save_as(buffer)
        return buffer.getvalue()
    except Exception:  # noqa: BLE001 - some seeds cannot hold some values: skip that mutant
        return None


def _set_in_functional_groups(ds, keyword: str, value) -> None:
    sequence = {
        "ImageOrientationPatient": "PlaneOrientationSequence",
        "ImagePositionPatient": "PlanePositionSequence",
        "PixelSpacing": "PixelMeasuresSequence",
        "RescaleSlope": "PixelValueTransformationSequence",
    }[keyword]
    text = "\\".join(str(v) for v in value) if isinstance(value, list) else str(value)
    for groups in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        for item in ds.get(groups) or []:
            if sequence in item and len(item[sequence].value) and keyword in item[sequence].value[0]:
                item[sequence].value[0][keyword].value = text


def byte_flips(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    # Mostly in the header, where the parser decides what to do; sometimes in the pixels.
    span = min(len(out), 2048) if rng.random() < 0.7 else len(out)
    for _ in range(rng.randint(1, 24)):
        position = rng.randrange(span)
        out[position] = rng.choice(
            [0x00, 0xFF, 0x7F, 0x80, rng.randrange(256), out[position] ^ (1 << rng.randrange(8))]
        )
    return bytes(out)


def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(0, len(data))]


def _element_offsets(data: bytes) -> list[int]:
    """Offsets of plausible explicit-VR element headers (tag followed by two letters)."""
    offsets = []
    for position in range(132, min(len(data), 4096) - 8):
        vr = data[position + 4 : position + 6]
        if vr.isalpha() and vr.isupper() and data[position + 1] in (0x00, 0x08, 0x20, 0x28, 0x02, 0x10, 0x18):
            offsets.append(position)
    return offsets


def wrong_vr_or_length(data: bytes, rng: random.Random) -> bytes:
    offsets = _element_offsets(data)
    out = bytearray(data)
    if not offsets:
        return byte_flips(data, rng)
    position = rng.choice(offsets)
    if rng.random() < 0.5:
        out[position + 4 : position + 6] = rng.choice(
            [b"ZZ", b"\x00\x01", b"OB", b"SQ", b"UN", b"US", b"FD", b"qq"]
        )
    else:
        out[position + 6 : position + 8] = struct.pack(
            "<H", rng.choice([0, 1, 3, 0xFFFF, 0xFFFE, rng.randrange(65536)])
        )
    return bytes(out)


def pixel_length(data: bytes, rng: random.Random) -> bytes:
    """A wrong length on PixelData (or its first fragment)."""
    position = data.rfind(b"\xe0\x7f\x10\x00")
    if position < 0:
        return truncate(data, rng)
    out = bytearray(data)
    field_at = position + 8 if data[position + 4 : position + 6] in (b"OB", b"OW") else position + 4
    out[field_at : field_at + 4] = struct.pack("<L", rng.choice([0, 1, 7, 0xFFFFFFFE, 0x7FFFFFFF, len(data)]))
    return bytes(out)


def deep_sequence(data: bytes, rng: random.Random) -> bytes:
    """A nested sequence (hundreds to many thousands deep) inserted at the data set's start."""
    if len(data) < 144 or data[128:132] != b"DICM":
        return byte_flips(data, rng)
    (group_length,) = struct.unpack_from("<L", data, 140)
    start = 144 + group_length
    if start > len(data):
        return byte_flips(data, rng)
    depth = rng.choice([200, 1000, 5000, 20000])
    implicit = b"1.2.840.10008.1.2\x00" in data[132:start] and b"1.2.840.10008.1.2.1" not in data[132:start]
    opening = b"\x08\x00\x15\x11" + (b"\xff\xff\xff\xff" if implicit else b"SQ\x00\x00\xff\xff\xff\xff")
    item = b"\xfe\xff\x00\xe0\xff\xff\xff\xff"
    closing = b"\xfe\xff\x0d\xe0\x00\x00\x00\x00" + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
    nested = (opening + item) * depth + closing * depth
    return data[:start] + nested + data[start:]


def hostile_attribute(data: bytes, rng: random.Random) -> bytes:
    keyword = rng.choice(list(HOSTILE_VALUES))
    return set_attribute(data, keyword, rng.choice(HOSTILE_VALUES[keyword])) or byte_flips(data, rng)


def combined(data: bytes, rng: random.Random) -> bytes:
    for _ in range(rng.randint(2, 3)):
        data = rng.choice([hostile_attribute, byte_flips, wrong_vr_or_length, pixel_length])(data, rng)
    return data


MUTATORS = [
    (byte_flips, 3),
    (truncate, 1),
    (wrong_vr_or_length, 2),
    (pixel_length, 1),
    (hostile_attribute, 5),
    (deep_sequence, 0.3),
    (combined, 2),
]


def generate_dicom(out: Path, count: int, rng: random.Random) -> list[Path]:
    """``count`` mutants in folders of 1-6, each folder also holding the good 3-slice series."""
    good = good_series_bytes()
    seeds = seed_files(good)
    functions = [m for m, _ in MUTATORS]
    weights = [w for _, w in MUTATORS]
    folders = []
    made = 0
    while made < count:
        folder = out / "dicom" / f"f{len(folders):05d}"
        folder.mkdir(parents=True)
        for index, data in enumerate(good):
            (folder / f"good{index}.dcm").write_bytes(data)
        for index in range(min(rng.randint(1, 6), count - made)):
            # A third of the mutants come from a good slice: they share its series UID.
            name, data = ("good_slice.dcm", rng.choice(good)) if rng.random() < 0.3 else rng.choice(seeds)
            mutator = rng.choices(functions, weights)[0]
            (folder / f"m{index}_{mutator.__name__}_{Path(name).stem}.dcm").write_bytes(mutator(data, rng))
            made += 1
        folders.append(folder)
    return folders


# ---------------------------------------------------------------- NIfTI and plugin faults


def generate_nifti(out: Path) -> list[Path]:
    import nibabel as nib

    folder = out / "nifti"
    folder.mkdir(parents=True)
    made = []

    def save(name: str, image) -> None:
        nib.save(image, folder / name)
        made.append(folder / name)

    affine = np.diag([1.0, 1.0, 1.0, 1.0])
    small = np.zeros((4, 4, 4), dtype=np.int16)
    save("good.nii.gz", nib.Nifti1Image(small, affine))
    for dtype in (np.int64, np.uint64, np.complex64, np.float64, np.uint32, np.int8, np.bool_):
        try:
            save(
                f"dtype_{np.dtype(dtype).name}.nii", nib.Nifti1Image(np.ones((4, 4, 4), dtype=dtype), affine)
            )
        except Exception:  # noqa: BLE001 - nibabel refuses some: nothing to test then
            pass
    rgb = np.zeros((4, 4, 4), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    save("rgb24.nii", nib.Nifti1Image(rgb, affine))
    for name, edit in (
        ("nan_affine.nii", lambda h: h.set_sform(np.full((4, 4), np.nan), code=1)),
        ("zero_pixdim.nii", lambda h: h.__setitem__("pixdim", [1, 0, 0, 0, 1, 1, 1, 1])),
        ("inf_pixdim.nii", lambda h: h.__setitem__("pixdim", [1, np.inf, 1, 1, 1, 1, 1, 1])),
    ):
        image = nib.Nifti1Image(small, affine)
        edit(image.header)
        image.header.set_qform(None, code=0) if "affine" in name else None
        save(name, image)
    good = (folder / "good.nii.gz").read_bytes()
    raw = gzip.decompress(good)
    for name, dims in (
        ("huge_dims.nii", [3, 32767, 32767, 32767]),
        ("negative_dims.nii", [3, -4, 4, 4]),
        ("dim0_9.nii", [9, 4, 4, 4]),
        ("zero_dims.nii", [3, 0, 4, 4]),
        ("7d.nii", [7, 2, 2, 2, 2, 2, 2, 2]),
    ):
        header = bytearray(raw[:352])
        values = (dims + [1] * 8)[:8]
        header[40:56] = struct.pack("<8h", *values)
        (folder / name).write_bytes(bytes(header) + raw[352:])
        made.append(folder / name)
    for name, code in (("dtype_code_9999.nii", 9999), ("dtype_code_0.nii", 0), ("dtype_code_1.nii", 1)):
        header = bytearray(raw[:352])
        header[70:72] = struct.pack("<h", code)
        (folder / name).write_bytes(bytes(header) + raw[352:])
        made.append(folder / name)
    (folder / "truncated.nii.gz").write_bytes(good[: len(good) // 2])
    (folder / "truncated_raw.nii").write_bytes(raw[:300])
    (folder / "vox_offset_huge.nii").write_bytes(raw[:108] + struct.pack("<f", 1e30) + raw[112:])
    (folder / "garbage.nii.gz").write_bytes(b"\x1f\x8b" + os.urandom(2000))
    made += [
        folder / n for n in ("truncated.nii.gz", "truncated_raw.nii", "vox_offset_huge.nii", "garbage.nii.gz")
    ]
    # Gzip bomb: a header for 2048^3 int16 (16 GiB) and that many zeros, as repeated gzip members.
    header = bytearray(raw[:352])
    header[40:56] = struct.pack("<8h", 3, 2048, 2048, 2048, 1, 1, 1, 1)
    chunk = gzip.compress(bytes(64 << 20), compresslevel=9)
    with open(folder / "gzip_bomb.nii.gz", "wb") as handle:
        handle.write(gzip.compress(bytes(header)))
        for _ in range(256):  # 256 x 64 MiB = 16 GiB once decompressed
            handle.write(chunk)
    made.append(folder / "gzip_bomb.nii.gz")
    return made


BILLION_LAUGHS = "\n".join(
    ["name: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [
        f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]"
        for i in range(1, 10)
    ]
)
MANIFEST = """name: fuzz-plugin
version: 1.0.0
task: denoising
input: {{modality: CT}}
output: {{modality: CT, units: HU}}
dimensionality: 2D
plane: axial
normalization:
  input: {{method: none}}
  output: {{method: same_as_input}}
architecture: {{type: resnet_6blocks, input_nc: 1, output_nc: 1, ngf: 8, norm: instance}}
weights: {{file: {weights}, sha256: {sha}}}
model_card: {{training_data: fuzz, paired: false, intended_use: fuzz, known_limits: fuzz}}
{extra}
"""


def generate_plugins(out: Path) -> list[Path]:
    import hashlib
    import pickle

    folder = out / "plugins"
    folder.mkdir(parents=True)
    outside = out / "outside"
    outside.mkdir()
    (outside / "x.pt").write_bytes(b"outside the plugin folder")
    sha = hashlib.sha256(b"outside the plugin folder").hexdigest()
    made = []

    def plugin(name: str, manifest: str, files: dict[str, bytes] | None = None) -> None:
        path = folder / name
        path.mkdir()
        (path / "plugin.yaml").write_text(manifest)
        for file_name, data in (files or {}).items():
            (path / file_name).write_bytes(data)
        made.append(path)

    plugin("billion_laughs", BILLION_LAUGHS)
    plugin("deep_nesting", "a: " + "[" * 20000 + "]" * 20000)
    plugin("huge_manifest", "name: x\nnote: " + "y" * (20 << 20))
    plugin("binary_manifest", "")
    (folder / "binary_manifest" / "plugin.yaml").write_bytes(os.urandom(4096))
    plugin("weights_parent", MANIFEST.format(weights="../../outside/x.pt", sha=sha, extra=""))
    plugin("weights_absolute", MANIFEST.format(weights=str(outside / "x.pt"), sha=sha, extra=""))
    plugin("weights_symlink", MANIFEST.format(weights="w.pt", sha=sha, extra=""))
    os.symlink(outside / "x.pt", folder / "weights_symlink" / "w.pt")
    payload = pickle.dumps({"state": [1, 2, 3]})
    plugin(
        "weights_pickle",
        MANIFEST.format(weights="w.pt", sha=hashlib.sha256(payload).hexdigest(), extra=""),
        {"w.pt": payload},
    )
    plugin("weights_missing", MANIFEST.format(weights="nothing.pt", sha="0" * 64, extra=""))
    for name, extra in (
        ("patch_1e30", "patch_size: 1e30"),
        ("size_multiple_huge", "size_multiple: 9223372036854775807"),
        ("spacing_inf", "spacing_mm: [.inf, 1, 1]"),
        ("spacing_nan", "spacing_mm: [.nan, 1]"),
    ):
        plugin(
            name,
            MANIFEST.format(weights="w.pt", sha=hashlib.sha256(b"0").hexdigest(), extra=extra),
            {"w.pt": b"0"},
        )
    return made


# ---------------------------------------------------------------- running and classifying


def memory_cap(limit_mb: int):
    def apply() -> None:
        limit = limit_mb << 20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        os.setsid()

    return apply


@dataclass
class Run:
    what: str  # "info FOLDER", "convert FILE", ...
    outcome: str
    detail: str = ""
    defects: list[str] = field(default_factory=list)


def classify(rc: int | None, log: str, hung: bool = False) -> str:
    if hung:
        return "hang"
    memory_markers = ("MemoryError", "bad_alloc", "Cannot allocate memory")
    if rc is not None and rc < 0:
        return "memory" if any(m in log for m in memory_markers) else "signal"
    if "Traceback (most recent call last)" in log:
        return "memory" if "MemoryError" in log else "traceback"
    return "success" if rc == 0 else "clean"


def message_defects(log: str) -> list[str]:
    """Lines printed for a person (a JSON document's are checked as data, in output_defects)."""
    start = log.find("\n{") + 1 if not log.startswith("{") else 0
    end = log.find("\n}", start) + 2
    if start > 0 or log.startswith("{"):
        log = log[:start] + log[end:]
    for line in log.splitlines():
        if len(line) > MAX_MESSAGE_CHARS or any(
            ord(c) < 32 and c != "\t" or 127 <= ord(c) < 160 for c in line
        ):
            return ["bad message"]
    return []


def output_defects(argv: list[str], rc: int | None, log: str) -> list[str]:
    """A NIfTI written with a non-finite affine, a lost good series, a reason that is not one line."""
    defects = []
    if argv[0] == "convert" and rc == 0 and Path(argv[2]).exists():
        import nibabel as nib

        try:
            affine = nib.load(argv[2]).affine
            if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) == 0:
                defects.append("bad output")
        except Exception:  # noqa: BLE001 - an unreadable output is a bad output
            defects.append("bad output")
    if (
        argv[0] == "info"
        and "--json" in argv
        and Path(argv[1]).is_dir()
        and (Path(argv[1]) / "good0.dcm").exists()
    ):
        good_uid = series_uid_of((Path(argv[1]) / "good0.dcm").read_bytes())
        try:
            description = json.loads(log[log.index("{") :]) if rc == 0 else None
        except ValueError:
            description = None
        if description is None:
            defects.append("lost series")
        else:
            files = sum(
                s["files"]
                for study in description["studies"]
                for s in study["series"]
                if s["series_instance_uid"] == good_uid
            )
            skipped_good = any(Path(s["path"]).name.startswith("good") for s in description["skipped"])
            if files < 3 or skipped_good:
                defects.append("lost series")
            reasons = [s["reason"] for s in description["skipped"]]
            texts = [
                str(value)
                for study in description["studies"]
                for item in [study, *study["series"]]
                for value in item.values()
                if isinstance(value, str)
            ]
            if any(len(r) > 200 for r in reasons) or not all(_printable(t) for t in reasons + texts):
                defects.append("bad message")
    return defects


def _printable(text: str) -> bool:
    return not any(ord(c) < 32 or 127 <= ord(c) < 160 for c in text)


class Worker:
    """A child process that runs ``main.main(argv)`` for one job after another."""

    def __init__(self, memory_mb: int, timeout_s: float, bundle_decoders: bool = False):
        self.memory_mb = memory_mb
        self.timeout_s = timeout_s
        self.bundle_decoders = bundle_decoders
        self.process: subprocess.Popen | None = None

    def _start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker"]
            + (["--bundle-decoders"] if self.bundle_decoders else []),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=REPO,
            preexec_fn=memory_cap(self.memory_mb),
        )

    def run(self, argv: list[str], log_path: Path) -> Run:
        if self.process is None or self.process.poll() is not None:
            self._start()
        assert self.process is not None and self.process.stdin and self.process.stdout
        try:
            self.process.stdin.write((json.dumps({"argv": argv, "log": str(log_path)}) + "\n").encode())
            self.process.stdin.flush()
        except BrokenPipeError:
            pass
        deadline = time.monotonic() + self.timeout_s + 5  # + the worker's first imports
        line = b""
        hung = False
        while not line.endswith(b"\n"):
            ready, _, _ = select.select([self.process.stdout], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                hung = True
                break
            chunk = os.read(self.process.stdout.fileno(), 65536)
            if not chunk:
                break
            line += chunk
        rc = None
        if line.endswith(b"\n"):
            reply = json.loads(line)
            rc = reply["rc"]
            hung = reply["seconds"] > self.timeout_s
        else:
            if hung:
                os.killpg(self.process.pid, signal.SIGKILL)
            rc = self.process.wait()
            self.process = None
        log = log_path.read_text(errors="replace") if log_path.exists() else ""
        outcome = classify(rc, log, hung)
        return Run(" ".join(argv), outcome, _tail(log), message_defects(log) + output_defects(argv, rc, log))

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait(timeout=10)


def without_libjpeg() -> None:
    """Decode as the installed bundle does: no GPL libjpeg, so GDCM is the JPEG Lossless decoder."""
    from pydicom import uid
    from pydicom.pixels import get_decoder

    for syntax in (
        uid.JPEGBaseline8Bit,
        uid.JPEGExtended12Bit,
        uid.JPEGLossless,
        uid.JPEGLosslessSV1,
        uid.JPEGLSLossless,
        uid.JPEGLSNearLossless,
    ):
        decoder = get_decoder(syntax)
        if "pylibjpeg" in decoder.available_plugins:
            decoder.remove_plugin("pylibjpeg")


def worker_main(bundle_decoders: bool) -> None:
    """The worker's loop: a JSON job per line on stdin, a JSON reply per line on stdout."""
    import main as entry

    if bundle_decoders:
        without_libjpeg()

    protocol = os.fdopen(os.dup(1), "w")
    for line in sys.stdin:
        job = json.loads(line)
        log = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        start = time.monotonic()
        try:
            rc = entry.main(job["argv"])
        except SystemExit as error:
            rc = error.code if isinstance(error.code, int) else 1
        except BaseException:  # noqa: BLE001 - exactly what the fuzz counts
            traceback.print_exc()
            rc = 1
        sys.stdout.flush()
        sys.stderr.flush()
        protocol.write(json.dumps({"rc": rc, "seconds": time.monotonic() - start}) + "\n")
        protocol.flush()


def run_subprocess(argv: list[str], memory_mb: int, timeout_s: float) -> Run:
    """``python main.py ARGV`` as a fresh process (what a user runs)."""
    process = subprocess.Popen(
        [sys.executable, "main.py", *argv],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=memory_cap(memory_mb),
    )
    hung = False
    try:
        output, _ = process.communicate(timeout=timeout_s + 3)  # + the interpreter's start
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        hung = True
    log = output.decode(errors="replace")
    outcome = classify(process.returncode, log, hung)
    return Run(
        " ".join(argv),
        outcome,
        _tail(log),
        message_defects(log) + output_defects(argv, process.returncode, log),
    )


def _tail(log: str) -> str:
    lines = [line for line in log.strip().splitlines() if line.strip()]
    return " | ".join(lines[-3:])[:400]


def run_all(
    jobs: list[list[str]],
    out: Path,
    workers: int,
    memory_mb: int,
    timeout_s: float,
    bundle_decoders: bool,
    subprocess_every: int = 0,
) -> list[Run]:
    """Every job in a pool of ``workers`` long-lived worker processes; every ``subprocess_every``-th
    one as a fresh ``python main.py`` instead (what a user runs: the worker must agree with it)."""
    pool = [Worker(memory_mb, timeout_s, bundle_decoders) for _ in range(workers)]
    free = list(pool)
    logs = out / "logs"
    logs.mkdir(exist_ok=True)
    import threading

    lock = threading.Lock()

    def one(index_and_argv) -> Run:
        index, argv = index_and_argv
        with lock:
            worker = free.pop()
        try:
            if subprocess_every and index % subprocess_every == 0 and not bundle_decoders:
                result = run_subprocess(argv, memory_mb, timeout_s)
                result.what = "[subprocess] " + result.what
            else:
                result = worker.run(argv, logs / f"{index:06d}.log")
            if argv[0] == "convert":
                Path(argv[2]).unlink(missing_ok=True)
            return result
        finally:
            with lock:
                free.append(worker)

    with ThreadPoolExecutor(max_workers=workers) as executor:
        results = list(executor.map(one, enumerate(jobs)))
    for worker in pool:
        worker.close()
    return results


def report(title: str, runs: list[Run], worst: int = 6) -> dict[str, int]:
    counts = Counter(run.outcome for run in runs)
    defects = Counter(defect for run in runs for defect in set(run.defects))
    row = {name: counts.get(name, 0) for name in OUTCOMES} | {name: defects.get(name, 0) for name in DEFECTS}
    print(f"{title:<26}" + "".join(f"{value:>12}" for value in row.values()) + f"{len(runs):>8}")
    return row


def print_worst(runs: list[Run], worst: int) -> None:
    order = {"signal": 0, "memory": 1, "hang": 2, "traceback": 3}
    bad = [run for run in runs if run.outcome in order or run.defects]
    bad.sort(key=lambda run: order.get(run.outcome, 4))
    seen = set()
    shown = 0
    for run in bad:
        key = (run.outcome, tuple(run.defects), run.detail[-80:])
        if key in seen:
            continue
        seen.add(key)
        print(
            f"  [{run.outcome}{' ' + ','.join(run.defects) if run.defects else ''}] {run.what}\n      {run.detail}"
        )
        shown += 1
        if shown >= worst:
            break


def fuzz(
    count: int,
    seed: int,
    jobs: int,
    out: Path,
    memory_mb: int,
    timeout_s: float,
    worst: int,
    nifti: bool = True,
    plugins: bool = True,
    bundle_decoders: bool = False,
    subprocess_every: int = 0,
) -> dict[str, dict[str, int]]:
    warnings.simplefilter("ignore")  # pydicom's notes on the hostile values written on purpose
    rng = random.Random(seed)
    start = time.monotonic()
    folders = generate_dicom(out, count, rng)
    mutants = sorted(p for folder in folders for p in folder.glob("m*.dcm"))
    print(
        f"generated {len(mutants)} mutated DICOM files in {len(folders)} folders from "
        f"{len(SEED_NAMES) + 1} seeds ({time.monotonic() - start:.1f} s)"
    )
    converted = out / "converted"
    converted.mkdir(exist_ok=True)
    work = [["info", str(folder), "--json"] for folder in folders]
    work += [["convert", str(path), str(converted / f"{i}.nii.gz")] for i, path in enumerate(mutants)]
    results = run_all(work, out, jobs, memory_mb, timeout_s, bundle_decoders, subprocess_every)
    folder_runs, file_runs = results[: len(folders)], results[len(folders) :]
    other: dict[str, list[Run]] = {}
    if nifti or plugins:
        extra_jobs: list[tuple[str, list[str]]] = []
        if nifti:
            for path in generate_nifti(out):
                extra_jobs.append(("nifti", ["info", str(path)]))
                extra_jobs.append(("nifti", ["convert", str(path), str(converted / f"n_{path.name}.nii.gz")]))
        if plugins:
            for path in generate_plugins(out):
                extra_jobs.append(("plugins", ["plugins", "check", str(path)]))
        with ThreadPoolExecutor(max_workers=jobs) as executor:
            # `plugins check` imports torch (8 s on a loaded machine): it gets PLUGIN_TIMEOUT_S.
            extra = list(
                executor.map(
                    lambda job: (
                        job[0],
                        run_subprocess(
                            job[1], memory_mb, PLUGIN_TIMEOUT_S if job[0] == "plugins" else timeout_s
                        ),
                    ),
                    extra_jobs,
                )
            )
        for kind, run in extra:
            other.setdefault(kind, []).append(run)
    print(f"\n{'':<26}" + "".join(f"{name:>12}" for name in OUTCOMES + DEFECTS) + f"{'runs':>8}")
    table = {
        "info on folders": report("info on folders", folder_runs),
        "convert on files": report("convert on files", file_runs),
    }
    for kind, runs in other.items():
        table[f"{kind} faults"] = report(
            f"{kind} (info/convert/check)" if kind == "nifti" else "plugins check", runs
        )
    everything = folder_runs + file_runs + [run for runs in other.values() for run in runs]
    print(
        f"\nworst examples (of {sum(1 for r in everything if r.outcome in ('traceback', 'hang', 'signal', 'memory') or r.defects)}):"
    )
    print_worst(everything, worst)
    print(f"\ntotal {len(everything)} runs in {time.monotonic() - start:.0f} s with {jobs} job(s)")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10000, help="mutated DICOM files (default 10000)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument(
        "--out", type=Path, default=None, help="keep the files here (default: a temporary folder)"
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per command (default 10)")
    parser.add_argument("--memory-mb", type=int, default=3072, help="address-space cap per process")
    parser.add_argument("--worst", type=int, default=12, help="examples of failures to print")
    parser.add_argument("--no-nifti", action="store_true")
    parser.add_argument("--no-plugins", action="store_true")
    parser.add_argument(
        "--bundle-decoders",
        action="store_true",
        help="decode as the installed bundle does (GDCM, no libjpeg)",
    )
    parser.add_argument(
        "--subprocess-every",
        type=int,
        default=50,
        metavar="K",
        help="run every K-th command as a fresh `python main.py` instead of in a worker (0: never)",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker_main(args.bundle_decoders)
        return 0
    out = args.out or Path(tempfile.mkdtemp(prefix="synthview-fuzz-"))
    if args.out and out.exists() and any(out.iterdir()):
        print(f"error: {out} is not empty", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    try:
        table = fuzz(
            args.count,
            args.seed,
            args.jobs,
            out,
            args.memory_mb,
            args.timeout,
            args.worst,
            nifti=not args.no_nifti,
            plugins=not args.no_plugins,
            bundle_decoders=args.bundle_decoders,
            subprocess_every=args.subprocess_every,
        )
        if args.out is not None:
            (out / "counts.json").write_text(json.dumps(table, indent=2))
    finally:
        if args.out is None:
            shutil.rmtree(out, ignore_errors=True)
    bad = sum(row[name] for row in table.values() for name in ("traceback", "hang", "signal", "memory"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
