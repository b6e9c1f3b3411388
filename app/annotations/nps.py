"""2D noise power spectrum (NPS) of a uniform ROI, as defined for CT (AAPM TG-233, ICRU 87).

For each patch I(x, y) of Nx x Ny pixels of size dx x dy mm, after removing its trend
(the mean, or a fitted second-order polynomial so that slow shading is not counted as noise):

    NPS(fx, fy) = dx * dy / (Nx * Ny) * |DFT[I - trend](fx, fy)|^2     (units^2 mm^2)

averaged over the patches (the same rectangle on ``slices`` neighbouring slices), with fx, fy
in cycles/mm. By Parseval's theorem the integral of the NPS over frequency equals the variance
of the detrended patch, which the result reports beside it. The radial average bins the 2D NPS
by |f| in steps of the coarser frequency spacing, up to the lower Nyquist frequency.

The patch is taken on the volume's own grid (no interpolation, which would colour the noise):
the ROI must lie in a plane of that grid, and a non-rectangular ROI uses the largest rectangle
of voxels it covers that the greedy trimming below finds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.annotations.roi_stats import region_voxel_indices, volume_units
from app.annotations.shapes import PlanarRegion
from app.core.volume import Volume

DETRENDS = ("mean", "poly2")
MIN_PATCH_PIXELS = 8  # per side: fewer gives too few frequencies to be worth a spectrum


@dataclass(frozen=True)
class NoisePowerSpectrum:
    """A 2D NPS, its radial average and the figures NPS reports quote."""

    frequency_x_per_mm: np.ndarray  # (Nx,) fftshift order, cycles/mm
    frequency_y_per_mm: np.ndarray  # (Ny,)
    nps_2d: np.ndarray  # (Ny, Nx) units^2 mm^2, zero frequency at the centre
    radial_frequency_per_mm: np.ndarray
    radial_nps: np.ndarray
    pixel_spacing_mm: tuple[float, float]  # (dx, dy)
    patch_shape: tuple[int, int]  # (Ny, Nx)
    patches: int
    variance: float  # mean variance of the detrended patches (population, / N)
    integral: float  # sum of nps_2d * dfx * dfy: equals ``variance`` (Parseval)
    detrend: str
    units: str = ""

    @property
    def peak_frequency_per_mm(self) -> float:
        if self.radial_nps.size == 0:
            return float("nan")
        return float(self.radial_frequency_per_mm[int(np.argmax(self.radial_nps))])

    @property
    def mean_frequency_per_mm(self) -> float:
        total = float(np.sum(self.radial_nps))
        if total <= 0:
            return float("nan")
        return float(np.sum(self.radial_frequency_per_mm * self.radial_nps) / total)

    def to_dict(self) -> dict:
        """The radial NPS and summary figures (the 2D array stays out of JSON exports)."""
        return {
            "units": f"{self.units}^2 mm^2" if self.units else "value^2 mm^2",
            "detrend": self.detrend,
            "pixel_spacing_mm": [float(s) for s in self.pixel_spacing_mm],
            "patch_shape": list(self.patch_shape),
            "patches": self.patches,
            "variance": float(self.variance),
            "integral": float(self.integral),
            "peak_frequency_per_mm": _finite_or_none(self.peak_frequency_per_mm),
            "mean_frequency_per_mm": _finite_or_none(self.mean_frequency_per_mm),
            "frequency_per_mm": [float(f) for f in self.radial_frequency_per_mm],
            "nps": [float(v) for v in self.radial_nps],
        }


def nps_of_patches(
    patches: np.ndarray, dx_mm: float, dy_mm: float, detrend: str = "poly2", units: str = ""
) -> NoisePowerSpectrum:
    """The NPS of a stack of (n, Ny, Nx) patches (ensemble average over the first axis)."""
    if detrend not in DETRENDS:
        raise ValueError(f"unknown detrend {detrend!r}; choose one of {', '.join(DETRENDS)}")
    patches = np.asarray(patches, dtype=np.float64)
    if patches.ndim == 2:
        patches = patches[None]
    count, ny, nx = patches.shape
    if min(ny, nx) < MIN_PATCH_PIXELS:
        raise ValueError(
            f"the noise power spectrum needs an ROI of at least {MIN_PATCH_PIXELS} x {MIN_PATCH_PIXELS} "
            f"voxels, this one covers {nx} x {ny}"
        )
    if not np.all(np.isfinite(patches)):
        raise ValueError("the ROI covers voxels outside the volume or without a value")
    residual = np.stack([_detrended(patch, detrend) for patch in patches])
    power = np.abs(np.fft.fft2(residual)) ** 2
    nps = np.fft.fftshift(power.mean(axis=0)) * (dx_mm * dy_mm) / (nx * ny)
    fx = np.fft.fftshift(np.fft.fftfreq(nx, d=dx_mm))
    fy = np.fft.fftshift(np.fft.fftfreq(ny, d=dy_mm))
    dfx, dfy = 1.0 / (nx * dx_mm), 1.0 / (ny * dy_mm)
    radial_f, radial_nps = _radial_average(nps, fx, fy, max(dfx, dfy))
    return NoisePowerSpectrum(
        frequency_x_per_mm=fx,
        frequency_y_per_mm=fy,
        nps_2d=nps,
        radial_frequency_per_mm=radial_f,
        radial_nps=radial_nps,
        pixel_spacing_mm=(float(dx_mm), float(dy_mm)),
        patch_shape=(ny, nx),
        patches=count,
        variance=float(np.mean(np.var(residual, axis=(1, 2)))),
        integral=float(np.sum(nps) * dfx * dfy),
        detrend=detrend,
        units=units,
    )


def nps_2d(volume: Volume, roi: PlanarRegion, detrend: str = "poly2", slices: int = 1) -> NoisePowerSpectrum:
    """The NPS of ``volume`` in ``roi`` (on its slice and ``slices - 1`` neighbours, averaged)."""
    patches, dx_mm, dy_mm = roi_patches(volume, roi, slices)
    return nps_of_patches(patches, dx_mm, dy_mm, detrend, volume_units(volume))


def roi_patches(volume: Volume, roi: PlanarRegion, slices: int = 1) -> tuple[np.ndarray, float, float]:
    """(patches (n, Ny, Nx), dx mm, dy mm): the ROI's voxel rectangle on its slice and neighbours."""
    if volume.is_colour:
        raise ValueError(f"{volume.name or 'this volume'} is a colour image: it has no noise spectrum")
    if slices < 1:
        raise ValueError(f"slices must be at least 1, got {slices}")
    normal_ijk = roi.normal_lps @ volume.geometry.direction  # the normal in index axes (i, j, k)
    through_ijk = int(np.argmax(np.abs(normal_ijk)))
    if abs(normal_ijk[through_ijk]) < 0.999:
        raise ValueError(
            "the noise power spectrum is taken on the volume's own grid: draw the ROI in a plane "
            "of this volume (it is oblique to its voxels)"
        )
    indices = region_voxel_indices(roi, volume.geometry, volume.shape_kji)
    if len(indices) == 0:
        raise ValueError("the ROI covers no voxel of this volume")
    through_kji = 2 - through_ijk
    rows_axis, cols_axis = (axis for axis in range(3) if axis != through_kji)
    low = indices.min(axis=0)
    covered = np.zeros(indices.max(axis=0) - low + 1, dtype=bool)
    covered[tuple((indices - low).T)] = True
    in_plane = covered.any(axis=through_kji)
    row_slice, col_slice = _largest_covered_box(in_plane)
    centre = int(indices[0, through_kji])
    depth = volume.shape_kji[through_kji]
    first = int(np.clip(centre - (slices - 1) // 2, 0, max(depth - slices, 0)))
    key = [slice(None)] * 3
    key[through_kji] = slice(first, min(first + slices, depth))
    key[rows_axis] = slice(row_slice.start + low[rows_axis], row_slice.stop + low[rows_axis])
    key[cols_axis] = slice(col_slice.start + low[cols_axis], col_slice.stop + low[cols_axis])
    # Plain slices: a lazy (resampled or difference) volume computes only this block.
    block = np.asarray(volume.voxels[tuple(key)], dtype=np.float64)
    patches = np.moveaxis(block, through_kji, 0)
    spacing_kji = volume.geometry.spacing_mm[::-1]
    return patches, float(spacing_kji[cols_axis]), float(spacing_kji[rows_axis])


def _largest_covered_box(covered: np.ndarray) -> tuple[slice, slice]:
    """A rectangle of ``covered`` pixels: trim the edge with the most uncovered pixels until full."""
    top, bottom, left, right = 0, covered.shape[0], 0, covered.shape[1]
    while top < bottom and left < right:
        box = covered[top:bottom, left:right]
        if box.all():
            break
        misses = {
            "top": np.count_nonzero(~box[0]),
            "bottom": np.count_nonzero(~box[-1]),
            "left": np.count_nonzero(~box[:, 0]),
            "right": np.count_nonzero(~box[:, -1]),
        }
        edge = max(misses, key=misses.get)
        if edge == "top":
            top += 1
        elif edge == "bottom":
            bottom -= 1
        elif edge == "left":
            left += 1
        else:
            right -= 1
    return slice(top, bottom), slice(left, right)


def _detrended(patch: np.ndarray, detrend: str) -> np.ndarray:
    if detrend == "mean":
        return patch - patch.mean()
    ny, nx = patch.shape
    y, x = np.mgrid[0:ny, 0:nx].astype(np.float64)
    x = (x - x.mean()) / max(nx, 1)
    y = (y - y.mean()) / max(ny, 1)
    design = np.column_stack([np.ones(patch.size), x.ravel(), y.ravel(), (x * x).ravel(), (x * y).ravel(), (y * y).ravel()])
    coefficients, *_ = np.linalg.lstsq(design, patch.ravel(), rcond=None)
    return patch - (design @ coefficients).reshape(patch.shape)


def _radial_average(
    nps: np.ndarray, fx: np.ndarray, fy: np.ndarray, bin_width: float
) -> tuple[np.ndarray, np.ndarray]:
    radius = np.hypot(*np.meshgrid(fx, fy, indexing="xy"))
    nyquist = min(float(np.max(np.abs(fx))), float(np.max(np.abs(fy))))
    bins = np.rint(radius / bin_width).astype(np.int64)
    last = int(np.floor(nyquist / bin_width + 1e-9))
    keep = bins <= last
    sums = np.bincount(bins[keep], weights=nps[keep], minlength=last + 1)
    counts = np.bincount(bins[keep], minlength=last + 1)
    filled = counts > 0
    return (np.arange(last + 1) * bin_width)[filled], sums[filled] / counts[filled]


def _finite_or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None
