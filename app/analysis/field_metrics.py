"""The image-quality metrics of the synthesis literature beside MAE/PSNR/SSIM/NCC, computed by
maintained implementations: mutual information (the joint histogram; checked against
scikit-learn's ``mutual_info_score``), normalised mutual information (scikit-image), and UQI,
VIF-p and MS-SSIM (sewar, 2D: computed on axial slices, each slice scaled by the stated data
range, and averaged over the slices used). FSIM and GMSD (piq, through
``app.plugins.piq_metrics``: torch stays in app.plugins) are computed on the same scaled slices
when the caller passes ``fsim_gmsd``.

LPIPS / FID need network weights that are never downloaded: ``app.plugins.learned_metrics`` runs
them on a weights file the user supplies (not validated for medical images).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from app.core.volume import Volume

MAX_SLICES = 16  # axial slices the 2D metrics are averaged over (evenly spaced, with foreground)
MI_BINS = 64
# sewar's UQI averages its 8 x 8 window's map without a 4-voxel border; its VIF-p filters four
# scales with Gaussian windows of 33, 17, 9 and 5 ('valid') and halves the image between them, so
# it needs 81 voxels a side: on smaller slices scipy swapped image and window (a figure from the
# window, not the image) or raised on a slice smaller than a window along one side only.
UQI_MIN_SIDE = 9
VIFP_MIN_SIDE = 81

ScaledPairs = Sequence[tuple[np.ndarray, np.ndarray]]  # (reference, test) axial slices scaled to 0..1


@dataclass(frozen=True)
class FieldMetrics:
    """Each metric is None where it is undefined (``absent`` says why): never NaN."""

    mutual_information_nats: float | None
    normalized_mutual_information: float | None  # scikit-image: (H(A) + H(B)) / H(A, B), 1 (independent) .. 2
    uqi: float | None
    vifp: float | None
    ms_ssim: float | None  # None when the slices are too small for five scales
    data_range: float | None  # None when none was given and the reference is constant (no range)
    slices_used: list[int]
    note: str
    fsim: float | None = None  # None when not asked for or not computable (``absent`` says why)
    gmsd: float | None = None
    absent: dict[str, str] | None = None  # metric name -> why it is null

    def to_dict(self) -> dict:
        return asdict(self)


def mutual_information(reference: np.ndarray, test: np.ndarray, bins: int = MI_BINS) -> float:
    """MI in nats of the two images' intensities, from a ``bins`` x ``bins`` joint histogram."""
    joint, _, _ = np.histogram2d(np.ravel(reference), np.ravel(test), bins=bins)
    joint = joint / joint.sum()
    px, py = joint.sum(axis=1, keepdims=True), joint.sum(axis=0, keepdims=True)
    nonzero = joint > 0
    return float(np.sum(joint[nonzero] * np.log(joint[nonzero] / (px @ py)[nonzero])))


def axial_arrays(reference: Volume, test: Volume) -> tuple[np.ndarray, np.ndarray, str]:
    """The two volumes as arrays whose first axis runs inferior-superior, so that their slices are
    axial whatever the files' storage order (a volume stored sagittally gave sagittal slices
    called axial), the test volume on the reference's grid; and a note when the reference is too
    oblique to reorient (its stored slices are used)."""
    from app.core.resample import reorient_towards_lps, resample_like

    note = ""
    try:
        reference = reorient_towards_lps(reference)
    except ValueError:
        note = "the reference is too oblique to reorient: its stored slices are used, not axial ones"
    if test.shape_kji != reference.shape_kji or not test.geometry.allclose(reference.geometry):
        try:
            reoriented = reorient_towards_lps(test)
        except ValueError:
            reoriented = test
        same_grid = reoriented.shape_kji == reference.shape_kji and reoriented.geometry.allclose(reference.geometry)
        test = reoriented if same_grid else resample_like(test, reference)
    return np.asarray(reference.voxels), np.asarray(test.voxels), note


def _slices(reference: np.ndarray, limit: int) -> list[int]:
    """Up to ``limit`` evenly spaced axial slices that hold foreground (above the 10th percentile)."""
    threshold = np.percentile(reference, 10)
    with_signal = [k for k in range(reference.shape[0]) if np.mean(reference[k] > threshold) > 0.05]
    if len(with_signal) <= limit:
        return with_signal
    return [with_signal[int(i)] for i in np.linspace(0, len(with_signal) - 1, limit).round()]


def scaled_axial_slices(
    reference: np.ndarray, test: np.ndarray, data_range: float | None = None, max_slices: int = MAX_SLICES
) -> tuple[list[int], list[tuple[np.ndarray, np.ndarray]], float]:
    """The axial slices the 2D metrics use (up to ``max_slices`` with foreground), both images
    scaled to 0..1 by the reference's minimum and the data range (given, else the reference's
    range), clipped: (slice indices, scaled pairs, data range)."""
    reference = np.asarray(reference, dtype=np.float64)
    test = np.asarray(test, dtype=np.float64)
    if reference.shape != test.shape:
        raise ValueError(f"arrays differ in shape: {reference.shape} vs {test.shape}; resample onto one grid first")
    finite = np.isfinite(reference) & np.isfinite(test)
    low = float(np.min(reference[finite]))
    data_range = float(data_range) if data_range else float(np.max(reference[finite]) - low)
    data_range = data_range or 1.0
    rows, columns = _finite_window(finite)
    slices = [
        k
        for k in _slices(np.where(finite, reference, low), max_slices)
        if rows.stop > rows.start and finite[k, rows, columns].all()
    ]
    scaled = [
        (
            np.clip((reference[k, rows, columns] - low) / data_range, 0, 1),
            np.clip((test[k, rows, columns] - low) / data_range, 0, 1),
        )
        for k in slices
    ]
    return slices, scaled, data_range


def _finite_mean(values: list[float]) -> tuple[float, int]:
    """The mean of the finite per-slice values (NaN when none) and how many were not finite: one
    uniform slice (VIF-p 0 / 0) made the whole volume's figure NaN."""
    values = np.asarray(values, dtype=float)
    finite = np.isfinite(values)
    return (float(np.mean(values[finite])) if finite.any() else float("nan")), int(np.count_nonzero(~finite))


def _finite_window(finite: np.ndarray) -> tuple[slice, slice]:
    """The rows and columns where both images have values on every slice that has any: a test
    volume covering part of the reference's field of view (NaN outside it once resampled) is
    compared on the part it covers, the same window on every slice (2D metrics cannot take NaN:
    sewar's VIF-p raised, its UQI gave NaN)."""
    covered = finite[finite.any(axis=(1, 2))].all(axis=0) if finite.any() else np.zeros(finite.shape[1:], bool)
    if not covered.any():
        return slice(0, 0), slice(0, 0)
    row_hits, column_hits = np.flatnonzero(covered.any(axis=1)), np.flatnonzero(covered.any(axis=0))
    return slice(row_hits[0], row_hits[-1] + 1), slice(column_hits[0], column_hits[-1] + 1)


def field_metrics(
    reference: np.ndarray,
    test: np.ndarray,
    data_range: float | None = None,
    fsim_gmsd: Callable[[ScaledPairs], tuple[float, float]] | None = None,
) -> FieldMetrics:
    """The metrics of ``test`` against ``reference`` (same grid, axes k, j, i); FSIM and GMSD
    too when ``fsim_gmsd`` (mean FSIM, mean GMSD of scaled slice pairs) is given."""
    from sewar.full_ref import msssim, uqi, vifp
    from skimage.metrics import normalized_mutual_information

    reference = np.asarray(reference, dtype=np.float64)
    test = np.asarray(test, dtype=np.float64)
    finite = np.isfinite(reference) & np.isfinite(test)
    if not finite.any():
        raise ValueError("no voxel is finite in both images: the field metrics are undefined")
    constant = not data_range and float(np.ptp(reference[finite])) == 0.0
    slices, scaled, data_range = scaled_axial_slices(reference, test, data_range)
    ms_ssim, note = None, ""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sewar warns about degenerate windows on flat background
        side = min(scaled[0][0].shape) if scaled else 0
        u, u_left_out = _finite_mean([uqi(a, b) for a, b in scaled] if side >= UQI_MIN_SIDE else [])
        v, v_left_out = _finite_mean([vifp(a, b) for a, b in scaled] if side >= VIFP_MIN_SIDE else [])
        if scaled and min(scaled[0][0].shape) >= 11 * 16:
            ms_ssim = float(np.mean([np.real(msssim(a, b, MAX=1.0)) for a, b in scaled]))
        elif scaled:
            note = f"MS-SSIM needs slices of at least 176 x 176 voxels for five scales; these are {scaled[0][0].shape}"
    fsim = gmsd = None
    absent = {}
    if fsim_gmsd is None:
        absent = {"fsim": "not computed (no FSIM/GMSD implementation given)", "gmsd": "not computed"}
    elif not scaled:
        absent = {"fsim": "no axial slice with foreground", "gmsd": "no axial slice with foreground"}
    else:
        try:
            fsim, gmsd = fsim_gmsd(scaled)
        except Exception as error:  # noqa: BLE001 - reported in the JSON, the other metrics stand
            reason = f"{type(error).__name__}: {error}".splitlines()[0]
            absent = {"fsim": reason, "gmsd": reason}
    values_r, values_t = reference[finite], test[finite]
    mi = mutual_information(values_r, values_t)
    with np.errstate(divide="ignore", invalid="ignore"):  # both constant: 0 / 0, said below
        nmi = float(normalized_mutual_information(values_r, values_t, bins=MI_BINS))
    if not scaled:
        if constant:
            why = "the reference is constant: no slice with foreground"
        elif not finite.all():
            why = "no axial slice with foreground inside the part of the field of view both images cover"
        else:
            why = "no axial slice with foreground"
        absent.update({"fsim": why, "gmsd": why})
    values = {"mutual_information_nats": mi, "normalized_mutual_information": nmi, "uqi": u, "vifp": v}
    for name, value in values.items():
        if np.isfinite(value):
            continue
        values[name] = None
        if name == "normalized_mutual_information":
            absent[name] = "undefined: both images are constant (joint entropy 0)"
        elif not scaled:
            absent[name] = absent["fsim"]
        elif name == "vifp" and min(scaled[0][0].shape) < VIFP_MIN_SIDE:
            absent[name] = (
                f"VIF-p needs slices of at least {VIFP_MIN_SIDE} x {VIFP_MIN_SIDE} voxels (sewar's four"
                f" scales); these are {scaled[0][0].shape}"
            )
        elif name == "uqi" and min(scaled[0][0].shape) < UQI_MIN_SIDE:
            absent[name] = f"UQI needs slices of at least {UQI_MIN_SIDE} x {UQI_MIN_SIDE} voxels; these are {scaled[0][0].shape}"
        else:
            absent[name] = "undefined on these slices (constant within sewar's windows)"
    if not scaled:
        absent.setdefault("ms_ssim", absent["fsim"])
    window = "".join(
        f"; {name}: {count} of {len(scaled)} slices undefined (constant in the reference), left out"
        for name, count in (("UQI", u_left_out), ("VIF-p", v_left_out))
        if count
    )
    if scaled and scaled[0][0].shape != reference.shape[1:]:
        rows, columns = scaled[0][0].shape
        window += f"; compared on the {rows} x {columns} voxels of each slice both images cover"
    return FieldMetrics(
        **values,
        ms_ssim=ms_ssim,
        data_range=None if constant else data_range,
        slices_used=slices,
        note=(note or f"UQI, VIF-p, MS-SSIM, FSIM, GMSD: mean over {len(slices)} axial slices scaled by the data range")
        + window,
        fsim=fsim,
        gmsd=gmsd,
        absent=absent or None,
    )
