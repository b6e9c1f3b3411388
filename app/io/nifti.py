"""NIfTI (.nii, .nii.gz) reading and writing with RAS <-> LPS handled in one place.

nibabel's affine maps the data array's (i, j, k) to RAS millimetres; our Volume keeps
``voxels[k, j, i]`` and an LPS geometry. The array is transposed as a view (no copy).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from app.core.label_map import LabelMapProvenance
from app.core.provenance import UNKNOWN_GENERATOR, Provenance
from app.core.study import SOURCE_STUDY_KEYS  # kept in a synthesized volume's sidecar
from app.core.volume import RAS_FROM_LPS, Geometry, Volume
from app.io.atomic import atomic_file, write_text_atomic
from app.io.errors import LoadError
from app.io.nifti_checks import check_declared

NIFTI_SUFFIXES = (".nii", ".nii.gz")
RGB24 = np.dtype([("R", "u1"), ("G", "u1"), ("B", "u1")])


# NIfTI header descriptions SynthView writes and reads back (the 80-byte descrip field).
SYNTHETIC_DESCRIP = b"SYNTHETIC (GAN output)"
# Every image of a blinded reader-study package, real or synthetic alike (so it tells nothing).
BLINDED_STUDY_DESCRIP = b"BLINDED STUDY IMAGE - MAY BE SYNTHETIC"
# A segmentation's label map: derived data, neither an acquired nor a synthesized image.
LABEL_MAP_DESCRIP = b"SEGMENTATION label map (derived, not an image)"


def is_nifti_path(path: str | Path) -> bool:
    return str(path).lower().endswith(NIFTI_SUFFIXES)


def sidecar_path(path: str | Path) -> Path:
    """The JSON sidecar beside a NIfTI file (BIDS style: same stem, .json)."""
    text = str(path)
    stem = text[: -len(".nii.gz")] if text.lower().endswith(".nii.gz") else text[: -len(".nii")]
    return Path(stem + ".json")


BURNED_IN_KEY = "BurnedInAnnotation"  # the DICOM keyword, in a volume's metadata and a sidecar


def says_burned_in(fields) -> bool:
    """Whether a header's fields (a volume's metadata, a sidecar, a pydicom Dataset: anything with
    ``get(keyword)``) say Burned In Annotation YES."""
    return str(fields.get(BURNED_IN_KEY, "")).strip().upper() == "YES"


def load_nifti(path: str | Path) -> Volume:
    """Read a 3D NIfTI image (a 4D one must have a single volume) as a Volume in LPS."""
    import nibabel as nib  # here, not at import: a DICOM load or the window's start pays nothing

    path = Path(path)
    image = nib.load(str(path))
    check_declared(path, image.header)  # before any voxel is read (huge headers, gzip bombs)
    image = nib.funcs.squeeze_image(image)
    if len(image.shape) != 3:
        raise LoadError(_not_3d_message(path, image.shape))
    # sform when set, else qform (nibabel's choice, the one dcm2niix and ITK agree with).
    ras_from_ijk = np.asarray(image.affine, dtype=float)
    lps_from_ijk = ras_from_ijk.copy()
    lps_from_ijk[:3, :] = RAS_FROM_LPS @ ras_from_ijk[:3, :]
    geometry = _orthonormal_geometry(lps_from_ijk)
    data = np.asanyarray(image.dataobj)  # applies scl_slope/inter; memory-mapped when possible
    if data.dtype.names == RGB24.names:  # RGB24: voxels[k, j, i, c]
        voxels = np.ascontiguousarray(data).view(np.uint8).reshape(*data.shape, 3).transpose(2, 1, 0, 3)
    else:
        voxels = data.T  # (i, j, k) -> (k, j, i): a view
    metadata: dict = {}
    provenance = None
    label_map = None
    side = sidecar_path(path)
    if side.exists():
        try:
            sidecar = json.loads(side.read_text())
        except (OSError, ValueError):
            sidecar = {}
        metadata["sidecar"] = sidecar
        if isinstance(sidecar.get("provenance"), dict):
            provenance = Provenance.from_dict(sidecar["provenance"])
            source_study = sidecar.get("source_study")
            if isinstance(source_study, dict):
                metadata.update(
                    {key: str(source_study[key]) for key in SOURCE_STUDY_KEYS if source_study.get(key)}
                )
        modality = str(sidecar.get("Modality", ""))
        if isinstance(sidecar.get("LabelMap"), dict):
            label_map = _label_map_from_sidecar(path, sidecar["LabelMap"])
        if says_burned_in(sidecar):
            metadata[BURNED_IN_KEY] = "YES"  # where app.io.dicom_export.burned_in_annotation reads it
    else:
        modality = ""
    descrip = bytes(image.header.get("descrip", b"")).rstrip(b"\x00 ")
    if provenance is None and descrip == SYNTHETIC_DESCRIP:
        # The sidecar went missing (a copied .nii.gz alone): the header still says what it is.
        provenance = Provenance(plugin_name=UNKNOWN_GENERATOR, plugin_version="(NIfTI header only)")
    if label_map is None and descrip == LABEL_MAP_DESCRIP:
        # The sidecar went missing: the header still says it is a label map, not an image.
        label_map = LabelMapProvenance(plugin_name="unknown segmentation", plugin_version="(NIfTI header only)", labels=())
    if label_map is not None:
        modality = modality or "SEG"
    return Volume(
        voxels=voxels,
        geometry=geometry,
        modality=modality,
        name=path.name,
        provenance=provenance,
        metadata=metadata,
        source_path=str(path),
        blinded_study_image=descrip == BLINDED_STUDY_DESCRIP,
        label_map=label_map,
    )


def _label_map_from_sidecar(path: Path, record: dict) -> LabelMapProvenance:
    try:
        return LabelMapProvenance.from_dict(record)
    except (KeyError, TypeError, ValueError) as error:
        raise LoadError(f"{path.name}: its sidecar's LabelMap block is damaged ({error}): fix or remove it") from None


def _not_3d_message(path: Path, shape: tuple[int, ...]) -> str:
    """Why a NIfTI image that is not one 3D volume is refused, and what to do about it."""
    if len(shape) == 4:
        x, y, z, count = shape
        return (
            f"{path.name} is a 4D image: {count} volumes of {x} x {y} x {z} voxels (a time series or "
            "diffusion set); SynthView shows one 3D volume at a time: save the one to view as its "
            "own file (e.g. fslroi IN OUT INDEX 1)"
        )
    return f"{path.name}: a {len(shape)}D image of shape {tuple(shape)}; SynthView reads 3D images"


def _storable(voxels: np.ndarray) -> np.ndarray:
    """64-bit integers (which nibabel refuses without an explicit type, and many tools cannot
    read) as the smallest integer type that holds every value; kept 64-bit only when needed."""
    if voxels.dtype not in (np.int64, np.uint64) or voxels.size == 0:
        return voxels
    low, high = int(voxels.min()), int(voxels.max())
    for candidate in (np.uint8, np.int16, np.uint16, np.int32, np.uint32):
        limits = np.iinfo(candidate)
        if limits.min <= low and high <= limits.max:
            return voxels.astype(candidate)
    return voxels


def _orthonormal_geometry(lps_from_ijk: np.ndarray) -> Geometry:
    """Geometry from an affine, tolerating slightly non-orthogonal (sheared) headers by QR."""
    linear = lps_from_ijk[:3, :3]
    spacing = np.linalg.norm(linear, axis=0)
    direction = linear / spacing
    if not np.allclose(direction.T @ direction, np.eye(3), atol=1e-4):
        q, r = np.linalg.qr(linear)
        signs = np.sign(np.diag(r))
        direction = q * signs
    return Geometry(lps_from_ijk[:3, 3].copy(), spacing, direction)


def save_nifti(volume: Volume, path: str | Path, extra_sidecar: dict | None = None) -> Path:
    """Write a Volume as NIfTI with the RAS affine (sform and qform, code 1 = scanner).

    A synthesized volume always gets a JSON sidecar carrying its provenance; a label map
    (``Volume.label_map``) is written with the NIfTI label intent, a SEGMENTATION description
    and its label table and plugin in the sidecar, never as an image.
    """
    import nibabel as nib

    path = Path(path)
    if volume.is_colour:  # RGB24, as dcm2niix writes colour images
        data = np.ascontiguousarray(volume.voxels.transpose(2, 1, 0, 3)).view(RGB24)[..., 0]
    else:
        data = _storable(np.ascontiguousarray(volume.voxels)).T  # back to (i, j, k)
    image = nib.Nifti1Image(data, volume.geometry.ras_from_ijk, dtype=data.dtype)
    image.set_sform(volume.geometry.ras_from_ijk, code=1)
    image.set_qform(volume.geometry.ras_from_ijk, code=1)
    image.header.set_xyzt_units("mm", "sec")
    if volume.is_synthetic:
        image.header["descrip"] = SYNTHETIC_DESCRIP
    elif volume.blinded_study_image:
        image.header["descrip"] = BLINDED_STUDY_DESCRIP
    sidecar = dict(extra_sidecar or {})
    if volume.is_label_map:
        image.header.set_intent("label")
        if not volume.is_synthetic:  # never in place of the SYNTHETIC marking
            image.header["descrip"] = LABEL_MAP_DESCRIP
        sidecar["LabelMap"] = volume.label_map.to_dict()
    if volume.modality:
        sidecar.setdefault("Modality", volume.modality)
    if says_burned_in(volume.metadata):
        # The pixels may show the patient's name: NIfTI has no field for it, so the sidecar says
        # it (DICOM's keyword) and a de-identified export of the file read back is refused.
        sidecar[BURNED_IN_KEY] = "YES"
    if volume.provenance is not None:
        sidecar["Synthetic"] = True
        sidecar["provenance"] = volume.provenance.to_dict()
        source_study = {key: str(volume.metadata[key]) for key in SOURCE_STUDY_KEYS if volume.metadata.get(key)}
        if source_study:
            sidecar.setdefault("source_study", source_study)
    # Written beside and renamed over (app.io.atomic): never half a file under the final name,
    # and the volume may be a memory map of ``path`` itself (an uncompressed .nii read by
    # load_nifti), which writing in place would truncate under it. The sidecar is renamed into
    # place just before the image, so a failed write leaves neither new.
    suffix = ".nii.gz" if str(path).lower().endswith(".gz") else ".nii"
    with atomic_file(path, suffix=suffix) as partial:
        nib.save(image, str(partial))
        if sidecar:
            write_text_atomic(sidecar_path(path), json.dumps(sidecar, indent=2, default=str))
        else:  # a sidecar left from an earlier file of that name would describe another image
            sidecar_path(path).unlink(missing_ok=True)
    return path


def header_fields(path: str | Path) -> dict[str, str]:
    """Every field of a NIfTI file's header as text (arrays rounded to 6 significant digits), for
    comparing files: the blinding audit asks whether any of them tells real from synthetic."""
    import nibabel as nib

    try:
        header = nib.load(str(path)).header
    except Exception as error:  # nibabel raises several types for a bad file
        raise LoadError(f"{Path(path).name}: not a readable NIfTI file ({error})") from None
    fields = {}
    for name in header.keys():
        value = np.asarray(header[name])
        if value.dtype.kind in "SUO":
            fields[name] = bytes(value.tobytes()).rstrip(b"\x00 ").decode("latin-1")
        else:
            fields[name] = " ".join(f"{float(x):.6g}" for x in value.ravel())
    return fields
