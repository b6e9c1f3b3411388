"""The hallucination report of one check: a self-contained HTML page to archive with a reader study.

It holds the inputs and the synthesized volume's provenance, the map settings, the metrics with
their data range, the notes (e.g. a meaningless cross-modality difference), and for every flagged
region its numbers and an axial image (original | synthesized | residual with the region
outlined) embedded as PNG, shown in the radiological convention of the viewer.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
from pathlib import Path

import numpy as np
from scipy import ndimage

from app.analysis.compare_run import CompareResult
from app.analysis.png import encode_png
from app.analysis.residual_regions import REGION_RESIDUAL
from app.core.display import WindowLevel, apply_window, percentile_window
from app.core.planes import Plane, extract_slice, scene_from_lps, slice_position_mm
from app.core.resample import resample_like
from app.core.volume import Volume
from app.io.atomic import write_text_atomic

CROP_HALF_MM = 40.0
MAX_REGIONS_SHOWN = 12
PIXEL_SIZE_MM = 0.25  # the report images are drawn at a fixed 0.25 mm per screen pixel (320 px panels)


def _crop(volume: Volume, centroid_lps: np.ndarray) -> np.ndarray:
    """Axial slice through the centroid, CROP_HALF_MM around it, resampled to PIXEL_SIZE_MM pixels."""
    image = extract_slice(volume, Plane.AXIAL, slice_position_mm(Plane.AXIAL, centroid_lps))
    u, v = scene_from_lps(Plane.AXIAL, centroid_lps)[:2]
    steps = np.arange(-CROP_HALF_MM, CROP_HALF_MM + 1e-6, PIXEL_SIZE_MM)
    cols = np.rint((u + steps - image.u0_mm) / image.du_mm).astype(int)
    rows = np.rint((v + steps - image.v0_mm) / image.dv_mm).astype(int)
    pixels = np.full((steps.size, steps.size), np.nan, dtype=np.float32)
    row_ok = (rows >= 0) & (rows < image.pixels.shape[0])
    col_ok = (cols >= 0) & (cols < image.pixels.shape[1])
    pixels[np.ix_(row_ok, col_ok)] = image.pixels[np.ix_(rows[row_ok], cols[col_ok])]
    return pixels


def _grey(pixels: np.ndarray, window: WindowLevel) -> np.ndarray:
    grey = apply_window(np.nan_to_num(pixels, nan=window.low), window)
    return np.repeat(grey[:, :, None], 3, axis=2)


def _residual_rgb(pixels: np.ndarray, scale: float) -> np.ndarray:
    """Diverging colours: red where the residual is positive (signal lost), blue where negative."""
    values = np.clip(np.nan_to_num(pixels) / scale, -1, 1)
    rgb = np.full(pixels.shape + (3,), 255, dtype=np.float32)
    rgb[..., 1] -= 255 * np.abs(values)
    rgb[..., 2] -= 255 * np.clip(values, 0, 1)
    rgb[..., 0] -= 255 * np.clip(-values, 0, 1)
    return rgb.astype(np.uint8)


def region_image(
    result: CompareResult, region_index: int, synthesized_on_grid: Volume, window: WindowLevel | None = None
) -> bytes:
    """PNG of base | synthesized | residual around one region, with the region outlined in yellow."""
    region = result.regions[region_index]
    centroid = np.asarray(region.centroid_lps_mm)
    base = result.reference if result.reference is not None else result.original
    labels = Volume(result.region_mask(region).astype(np.float32), base.geometry)
    outline_mask = _crop(labels, centroid) > 0.5
    outline = outline_mask & ~ndimage.binary_erosion(outline_mask, iterations=2)
    base_pixels = _crop(base, centroid)
    if window is None:  # local contrast: the crop's own 1-99 percentiles
        finite = base_pixels[np.isfinite(base_pixels)]
        window = percentile_window(finite) if finite.size else WindowLevel(0.0, 1.0)
    panels = [
        _grey(base_pixels, window),
        _grey(_crop(synthesized_on_grid, centroid), window),
        _residual_rgb(_crop(result.residual_map, centroid), max(abs(result.settings.threshold) * 3, 1e-6)),
    ]
    for panel in panels:
        panel[outline] = (255, 220, 0)
    gap = np.full((panels[0].shape[0], 4, 3), 40, dtype=np.uint8)
    return encode_png(np.concatenate([panels[0], gap, panels[1], gap, panels[2]], axis=1))


def _table(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def consistency_section(block: dict) -> list[str]:
    """The downstream-task consistency block (``compare --segment``) as HTML parts."""
    segmentations = block["segmentations"]
    plugins = ", ".join(
        f"{role}: {item['plugin_name']} {item['plugin_version']}" for role, item in segmentations.items()
    )
    parts = [
        "<h2>Segmentation consistency</h2>",
        f"<p>Label maps by {html.escape(plugins)}; compared on the"
        " original's grid. HD95: 95th percentile of the pooled surface distances (mm).</p>",
    ]
    header = "".join(
        f"<th>{h}</th>"
        for h in (
            "label",
            "Dice",
            "original (mL)",
            "synthesized (mL)",
            "change (mL)",
            "change (%)",
            "HD95 (mm)",
            "Hausdorff (mm)",
        )
    )
    rows = []
    for label in block["labels"]:
        cells = [label["name"]] + [
            "-" if label[key] is None else f"{label[key]:.4g}"
            for key in (
                "dice",
                "volume_original_ml",
                "volume_synthesized_ml",
                "volume_change_ml",
                "volume_change_percent",
                "hd95_mm",
                "hausdorff_mm",
            )
        ]
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    parts.append(f"<table><tr>{header}</tr>{''.join(rows)}</table>")
    regions = block["regions"]
    parts.append(
        f"<h3>Disagreement regions ({len(regions)} listed; {block['disagreement_ml']:.4g} mL of differing"
        " labels in all)</h3>"
    )
    listed = block.get("region_filter")
    if listed:
        parts.append(
            f"<p>{html.escape(listed['description'])}: {block.get('unlisted_regions', 0)} smaller region(s) and"
            f" {block.get('boundary_jitter_voxels', 0)} voxels of boundary jitter not listed (the per-label"
            " figures count every voxel).</p>"
        )
    for number, region in enumerate(regions[:MAX_REGIONS_SHOWN], start=1):
        centroid = ", ".join(f"{v:.1f}" for v in region["centroid_lps_mm"])
        changes = "; ".join(f"{c['description']} ({c['voxel_count']} voxels)" for c in region["changes"])
        parts.append(
            _table(
                [
                    (f"region {number} centroid (LPS mm)", centroid),
                    ("volume (mL)", f"{region['volume_ml']:.4g}"),
                    ("labels (original -> synthesized)", changes),
                ]
            )
        )
    if len(regions) > MAX_REGIONS_SHOWN:
        parts.append(
            f"<p>{len(regions) - MAX_REGIONS_SHOWN} smaller regions are listed in the JSON only.</p>"
        )
    parts.extend(f"<p class='note'>Note: {html.escape(note)}</p>" for note in block["notes"])
    return parts


def _figure(value, spec: str = ".4f") -> str:
    return format(value, spec) if isinstance(value, (int, float)) else "n/a"


def field_metrics_section(block: dict) -> list[str]:
    """The field's metrics (``compare --field-metrics``) as HTML parts; LPIPS / FID marked as not
    validated for medical images, an absent figure with its reason."""
    rows = [
        ("mutual information (nats)", _figure(block.get("mutual_information_nats"))),
        ("normalised mutual information", _figure(block.get("normalized_mutual_information"))),
        *(
            (name, _figure(block.get(key)))
            for name, key in (("UQI", "uqi"), ("VIF-p", "vifp"), ("MS-SSIM", "ms_ssim"))
        ),
        ("FSIM", _figure(block.get("fsim"))),
        ("GMSD", _figure(block.get("gmsd"))),
    ]
    for name, reason in (block.get("absent") or {}).items():
        rows.append((f"{name.upper()} absent", reason))
    parts = [
        "<h2>Image-quality metrics of the field</h2>",
        f"<p>Against the {html.escape(str(block.get('against')))}; data range"
        f" {html.escape(_figure(block.get('data_range'), '.4g'))}; {html.escape(str(block.get('note', '')))}.</p>",
        _table(rows),
    ]
    for key, label in (("lpips", "LPIPS"), ("fid", "FID")):
        entry = block.get(key)
        if not entry:
            continue
        if entry.get("value") is None:
            text = f"{label}: not computed ({entry.get('reason')})"
        else:
            sample = f"; {entry['sample_note']}" if entry.get("sample_note") else ""
            text = (
                f"{label} {_figure(entry['value'])} ({entry.get('definition', '')}{sample}; weights"
                f" {entry.get('weights_file')}, SHA-256 {entry.get('weights_sha256')})"
            )
        parts.append(
            f"<p class='learned'><b>{html.escape(label)}: {html.escape(entry.get('warning', 'not validated for medical images'))}.</b>"
            f" {html.escape(text)}</p>"
        )
    return parts


def _threshold_rows(result: CompareResult) -> list[tuple[str, str]]:
    """The threshold in the unit it is in: |z| at the operating point (and what change that
    flags in image units), or image units for a fixed ``--threshold``."""
    settings = result.settings
    if settings.statistic != "z":
        return [("threshold (image units)", f"{settings.threshold:.6g}")]
    rows = [("threshold (|z|)", f"{settings.threshold:.4g}")]
    if result.operating is not None:
        point = result.operating
        rows.append(
            (
                "operating point",
                f"{point.false_regions_per_volume:g} false region(s) per healthy volume ({point.source})",
            )
        )
    rows.append(("change flagged at the threshold, 6 mm scale (image units)", f"{result.flag_level:.4g}"))
    return rows


_OUTSIDE_SIGN = {
    "+": "+ (the input lies above the plugin's range)",
    "-": "- (the input lies below the plugin's range)",
}


def render_report(
    result: CompareResult,
    title: str = "Hallucination check",
    consistency: dict | None = None,
    field_metrics: dict | None = None,
) -> str:
    """The report as one HTML string (images embedded, no external files)."""
    base = result.reference if result.reference is not None else result.original
    synthesized_on_grid = resample_like(result.synthesized, base)
    data = result.to_dict()
    provenance = data["synthesized_provenance"]
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;margin:2em;background:#fafafa}table{border-collapse:collapse;"
        "margin:0.5em 0}th,td{border:1px solid #bbb;padding:3px 8px;text-align:left}"
        ".synthetic{color:#fff;background:#c00;padding:4px 8px;font-weight:bold}.note{color:#a60}</style>",
        "</head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>Generated {_dt.datetime.now(_dt.UTC).isoformat(timespec='seconds')} by SynthView.</p>",
    ]
    label = (
        result.synthesized.provenance.label()
        if result.synthesized.provenance
        else "SYNTHETIC (no provenance recorded)"
    )
    parts.append(f"<p class='synthetic'>{html.escape(label)}</p>")
    parts.append("<h2>Inputs</h2>")
    for key in ("original", "synthesized", "reference"):
        if data[key]:
            item = data[key]
            parts.append(f"<h3>{key}</h3>")
            parts.append(
                _table(
                    [
                        ("name", item["name"]),
                        ("modality", item["modality"] or "unknown"),
                        ("shape (k, j, i)", str(item["shape_kji"])),
                        ("spacing (i, j, k) mm", str(item["spacing_mm"])),
                        ("orientation", item["orientation"]),
                    ]
                )
            )
    parts.append("<h2>Provenance of the synthesized volume</h2>")
    parts.append(_table([(k, str(v)) for k, v in (provenance or {"synthetic": "unknown"}).items()]))
    parts.append("<h2>Map settings</h2>")
    settings = result.settings
    parts.append(
        _table(
            [
                ("residual", result.residual_source),
                *_threshold_rows(result),
                ("smoothing sigma (mm)", f"{settings.smoothing_sigma_mm:g}"),
                ("minimum region volume (mL)", f"{settings.min_volume_ml:g}"),
                ("sign", settings.signed),
                ("connectivity", "26-connected"),
            ]
        )
    )
    for name, summary in data["maps"].items():
        parts.append(f"<h3>{html.escape(name)} map</h3>")
        parts.append(_table([(k, "-" if v is None else f"{v:.4g}") for k, v in summary.items()]))
    for note in result.notes:
        parts.append(f"<p class='note'>Note: {html.escape(note)}</p>")
    parts.append("<h2>Metrics</h2>")
    if not result.metrics:
        parts.append("<p>No metrics: no pair of the same modality to compare.</p>")
    for name, metrics in result.metrics.items():
        parts.append(f"<h3>{html.escape(name.replace('_', ' '))}</h3>")
        parts.append(
            _table(
                [
                    ("MAE", f"{metrics.mae:.6g}"),
                    ("MSE", f"{metrics.mse:.6g}"),
                    ("PSNR (dB)", f"{metrics.psnr_db:.4f}"),
                    ("SSIM", f"{metrics.ssim:.6f}"),
                    ("NCC", f"{metrics.ncc:.6f}"),
                    ("data range", f"{metrics.data_range:.6g} ({metrics.data_range_source})"),
                    ("voxels", str(metrics.voxel_count)),
                ]
            )
        )
    parts.append(f"<h2>Flagged regions ({len(result.regions)})</h2>")
    if result.regions:
        parts.append(
            "<p>Images: axial, radiological convention (patient left on the right), "
            f"{2 * CROP_HALF_MM:g} mm square: base | synthesized | residual (red = signal lost in the output, "
            "blue = signal added); the region is outlined in yellow.</p>"
        )
    map_means = result.region_map_means()
    shown = result.shown_region_indices(MAX_REGIONS_SHOWN)
    for index in shown:
        region = result.regions[index]
        png = base64.b64encode(region_image(result, index, synthesized_on_grid)).decode("ascii")
        centroid = ", ".join(f"{v:.1f}" for v in region.centroid_lps_mm)
        parts.append(f"<h3>Region {index + 1}</h3>")
        # An outside-range region's values are the input's excess over the plugin's range, not
        # a residual: the reader must see which kind each region is, as the JSON and console say.
        value = "residual" if region.kind == REGION_RESIDUAL else "excess over the input range"
        sign = (
            result.sign_meaning(region.sign) if region.kind == REGION_RESIDUAL else _OUTSIDE_SIGN[region.sign]
        )
        parts.append(
            _table(
                [
                    ("kind", region.description),
                    ("sign", sign),
                    ("centroid (LPS mm)", centroid),
                    ("volume (mL)", f"{region.volume_ml:.4g}"),
                    (f"peak {value}", f"{region.peak_residual:+.4g}"),
                    (f"mean {value}", f"{region.mean_residual:+.4g}"),
                    *((("peak z", f"{region.peak_z:+.2f}"),) if region.peak_z is not None else ()),
                    *((f"mean {name} inside", f"{value:.4g}") for name, value in map_means[index].items()),
                ]
            )
        )
        parts.append(f"<img alt='region {index + 1}' src='data:image/png;base64,{png}'>")
    if len(result.regions) > len(shown):
        parts.append(
            f"<p>{len(result.regions) - len(shown)} smaller regions are listed in the JSON only.</p>"
        )
    if field_metrics:
        parts.extend(field_metrics_section(field_metrics))
    if consistency:
        parts.extend(consistency_section(consistency))
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(
    result: CompareResult,
    path: str | Path,
    title: str = "Hallucination check",
    consistency: dict | None = None,
    field_metrics: dict | None = None,
) -> Path:
    path = Path(path)
    return write_text_atomic(path, render_report(result, title, consistency, field_metrics))
