"""A synthesized series as an archive may hand it back: transcoded by dcmtk or pydicom, or
rebuilt as one enhanced multi-frame object with its marking inside the functional groups."""

from __future__ import annotations

import copy
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import EnhancedMRImageStorage, JPEG2000Lossless, generate_uid

from app.core.provenance import Provenance
from app.core.volume import Geometry, Volume


def small_synthetic_volume() -> Volume:
    """32 x 32 x 4 (JPEG 2000 encoders refuse much smaller images), marked as mr-t1-denoise."""
    voxels = (np.random.default_rng(5).normal(300, 60, (4, 32, 32))).astype(np.int16)
    geometry = Geometry(np.array([-20.0, -10.0, 5.0]), np.array([1.2, 1.1, 3.0]), np.eye(3))
    provenance = Provenance(
        "mr-t1-denoise", "1.0.0", task="denoising", weights_sha256="cd" * 32, device="cpu"
    )
    return Volume(voxels, geometry, modality="MR", name="denoised", provenance=provenance)


def _dcmtk(*command: str) -> Callable[[Path, Path], None]:
    def transcode(source: Path, target: Path) -> None:
        subprocess.run([*command, str(source), str(target)], check=True, capture_output=True, timeout=60)

    return transcode


def _pydicom_j2k(source: Path, target: Path) -> None:
    dataset = pydicom.dcmread(source)
    dataset.compress(JPEG2000Lossless)  # pylibjpeg-openjpeg's encoder (dcmtk has none for JPEG 2000)
    dataset.save_as(target)


TRANSCODERS: dict[str, Callable[[Path, Path], None]] = {
    "implicit": _dcmtk("dcmconv", "+ti"),
    "big-endian": _dcmtk("dcmconv", "+tb"),
    "rle": _dcmtk("dcmcrle"),
    "jpeg-ls": _dcmtk("dcmcjpls"),
    "jpeg2000": _pydicom_j2k,
}
ENHANCED_PLACEMENTS = ("top-level", "shared-group", "per-frame-group")


def transcoded(series_dir: Path, target: Path, name: str) -> Path:
    target.mkdir(parents=True)
    for path in sorted(series_dir.glob("*.dcm")):
        TRANSCODERS[name](path, target / path.name)
    return target


def enhanced(series_dir: Path, target: Path, placement: str) -> Path:
    """The series as one Enhanced MR object; ``placement`` says where its marking sits."""
    slices = [pydicom.dcmread(p) for p in sorted(series_dir.glob("*.dcm"))]
    first = slices[0]
    ds = copy.deepcopy(first)
    for keyword in (
        "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SliceThickness",
        "SpacingBetweenSlices", "SliceLocation", "InstanceNumber", "SourceImageSequence",
        "RescaleSlope", "RescaleIntercept", "RescaleType", "WindowCenter", "WindowWidth",
    ):  # fmt: skip
        if keyword in ds:
            delattr(ds, keyword)
    ds.SOPClassUID = EnhancedMRImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.InstanceNumber = 1
    ds.NumberOfFrames = len(slices)
    ds.PixelData = b"".join(s.PixelData for s in slices)
    shared = Dataset()
    measures = Dataset()
    measures.PixelSpacing = first.PixelSpacing
    measures.SliceThickness = first.SliceThickness
    measures.SpacingBetweenSlices = first.SpacingBetweenSlices
    shared.PixelMeasuresSequence = Sequence([measures])
    orientation = Dataset()
    orientation.ImageOrientationPatient = first.ImageOrientationPatient
    shared.PlaneOrientationSequence = Sequence([orientation])
    transformation = Dataset()
    transformation.RescaleSlope = first.get("RescaleSlope", 1)  # an MR export has no Modality LUT
    transformation.RescaleIntercept = first.get("RescaleIntercept", 0)
    transformation.RescaleType = "US"
    shared.PixelValueTransformationSequence = Sequence([transformation])
    per_frame = []
    for index, image in enumerate(slices):
        item = Dataset()
        position = Dataset()
        position.ImagePositionPatient = image.ImagePositionPatient
        item.PlanePositionSequence = Sequence([position])
        content = Dataset()
        content.InStackPositionNumber = index + 1
        item.FrameContentSequence = Sequence([content])
        per_frame.append(item)
    if placement != "top-level":
        description = ds.DerivationDescription
        for keyword in ("SyntheticData", "DerivationDescription", "DerivationCodeSequence"):
            delattr(ds, keyword)
        ds.ImageType = ["ORIGINAL", "PRIMARY", "OTHER"]
        if placement == "shared-group":
            shared.add_new(0x0008001C, "CS", "YES")
        else:
            for item in per_frame:
                frame_type = Dataset()
                frame_type.FrameType = ["DERIVED", "SECONDARY", "OTHER", "NONE"]
                item.MRImageFrameTypeSequence = Sequence([frame_type])
                derivation = Dataset()
                derivation.DerivationDescription = description
                derivation.add_new(0x0008001C, "CS", "YES")
                item.DerivationImageSequence = Sequence([derivation])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    ds.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    target.mkdir(parents=True)
    ds.save_as(target / "enhanced.dcm", enforce_file_format=True)
    return target


def variant(series_dir: Path, root: Path, name: str) -> Path:
    """One named variant of ``series_dir`` under ``root`` (transcoded or enhanced)."""
    target = root / name
    if target.exists():
        return target
    if name.startswith("enhanced-"):
        return enhanced(series_dir, target, name.removeprefix("enhanced-"))
    return transcoded(series_dir, target, name)


VARIANTS = (*TRANSCODERS, *(f"enhanced-{p}" for p in ENHANCED_PLACEMENTS))


def without_tool(name: str) -> bool:
    return name in ("implicit", "big-endian", "rle", "jpeg-ls") and shutil.which("dcmconv") is None
