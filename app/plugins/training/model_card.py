"""Render a plugin's MODEL_CARD.md from its manifest and its training/held-out record."""

from __future__ import annotations

import json


def _metric_rows(heldout: dict) -> list[str]:
    rows = [
        "| images compared with the held-out truth | MAE (fraction of p99.5) | PSNR (dB) | SSIM |",
        "| --- | --- | --- | --- |",
    ]
    labels = {"output_vs_truth": "plugin output", "input_vs_truth": "degraded input (baseline)"}
    for key, label in labels.items():
        values = heldout[key]
        rows.append(f"| {label} | {values['mae']:.4f} | {values['psnr_db']:.2f} | {values['ssim']:.3f} |")
    return rows


def _generator_rows(heldout: dict) -> list[str]:
    return [
        "| figure | value |",
        "| --- | --- |",
        *(f"| {key} | {value} |" for key, value in heldout.items()),
        "",
        "MAE/PSNR/SSIM here compare each sample with its NEAREST training slice (lower MAE / higher"
        " SSIM = closer to copying). `heldout_to_nearest_training_*` gives the same figure for real"
        " slices of the other head: samples much closer to the training slices than that would"
        " suggest memorisation. Pixel values are fractions of the 99.5th percentile.",
    ]


def assessment(heldout: dict) -> list[str]:
    """Plain statements of where the output beats the degraded input and where it does not."""
    output, baseline = heldout["output_vs_truth"], heldout["input_vs_truth"]
    better = [name for name, key, sign in _FIGURES if sign * (output[key] - baseline[key]) > 0]
    worse = [name for name, key, sign in _FIGURES if sign * (output[key] - baseline[key]) <= 0]
    head = "**Assessment:** on the held-out head the output is"
    if not worse:
        verdict = f"closer to the truth than the degraded input by every figure ({', '.join(better)})."
    elif not better:
        verdict = f"NOT closer to the truth than the degraded input by any figure ({', '.join(worse)})."
    else:
        verdict = (
            f"closer to the truth than the degraded input by {', '.join(better)};"
            f" it is NOT closer by {', '.join(worse)}."
        )
    lines = [f"{head} {verdict}"]
    lesions = heldout.get("lesions")
    if lesions and (
        lesions["residual_lesion_to_brain_ratio"] < 1.5 or lesions["lesion_error_removed_fraction"] < 0.5
    ):
        lines.append("")
        lines.append(
            "**The residual map does NOT reliably show lesions at this training size:** it removed"
            f" {lesions['lesion_error_removed_fraction']:.0%} of the inserted lesions' error and the residual"
            f" inside lesions is {lesions['residual_lesion_to_brain_ratio']} x that of the rest of the brain."
            " Treat it as a demonstration of the pipeline, not as a lesion detector."
        )
    return lines


_FIGURES = (("MAE", "mae", -1), ("PSNR", "psnr_db", +1), ("SSIM", "ssim", +1))


def _residual_description(training: dict) -> str:
    """The residual U-Net line: what the network is and the loss it was trained with."""
    loss = (
        f"L1 weighted {training['lesion_weight'] + 1:g}x on the voxels the degradation changed (the"
        " inserted lesions) and 1x elsewhere (an identity term: healthy tissue must come out unchanged)"
        if training.get("lesion_weight")
        else "plain L1 to the truth"
    )
    return (
        f": {training['network']} (a small U-Net: average-pool down, bilinear upsample + 3x3 conv up, no"
        " transposed convolutions; the last layer starts at zero so the untrained model is the identity;"
        " no tanh on the correction, only a clamp to the network range), scripted with its skip"
        f" connection. Trained with {loss}, no adversarial term, on {training['crop']} px crops"
        + (
            f"; {training['identity_fraction']:.0%} of every batch lesion-free crops (target = input), "
            + (
                f"{training['mined_share']:.0%} of them centred on healthy training-head spots the initial"
                " weights changed by more than 5 % of the 99.5th percentile, as they are or blurred 1 mm"
                " (look-alike mining), two thirds of the rest on healthy anatomy that looks like a lesion"
                " (ventricles, sulci, vessels, orbits, the head's or skull-strip edge)"
                if training.get("mined_share")
                else "two thirds of them centred on healthy anatomy that looks like a lesion (ventricles, sulci,"
                " vessels, orbits, the head's or skull-strip edge)"
            )
            if training.get("identity_fraction")
            else ""
        )
        + (
            "; every pair, lesioned or healthy, changed alike in input and truth toward a smoother,"
            " lower-noise average head (in-plane Gaussian blur of 0-1.5 mm in 3 pairs of 4, a smooth bias"
            " field, a gamma, added noise)"
            if training.get("domain_augment")
            else ""
        )
        + (
            "; dark training lesions only in white matter, clear of CSF and of the brain's edge by their"
            " largest radius + 3 mm (so no dark CSF space is ever a lesion to fill)"
            if training.get("dark_lesions_in_white_matter")
            else ""
        )
        + f"; Adam {training.get('learning_rate', 1e-3):g} with cosine decay (by iteration, or by wall time"
        " when the time guard ends the run first, so a retrain on a busier machine gives different weights)"
        + (
            f", starting from the weights of SHA-256 {training['initial_weights_sha256'][:12]} (fine-tuning)."
            if training.get("initial_weights_sha256")
            else "."
        )
        + (
            f" Corrections smaller than {training['dead_zone']:g} (network units, range 2) are dropped and"
            " larger ones shrunk by it; the value was chosen on the training head's pairs."
            if training.get("dead_zone")
            else ""
        )
    )


BENCHMARK_FILE = "hallucination_benchmark.md"  # written by bench/bench_hallucination.py --write-cards
MEMORISATION_FILE = "memorisation_check.md"  # written by python -m app.plugins.training.memorisation


def benchmark_section(folder) -> str:
    """The measured sections for the card of the plugin in ``folder``: the hallucination
    benchmark's and the memorisation check's, where present ("" if none)."""
    from pathlib import Path

    paths = [Path(folder) / name for name in (BENCHMARK_FILE, MEMORISATION_FILE)]
    return "\n\n".join(path.read_text().strip() for path in paths if path.is_file())


def heldout_use(record: dict) -> list[str]:
    """What the held-out head was also used for, stated plainly: it is the demo study's head, and
    any run, setting or threshold chosen on it (``record["heldout_use"]``, kept with the run's
    record in metrics.json) is named, or the card says none was recorded."""
    head = record["heldout_head"]
    choices = record.get("heldout_use")
    lines = [
        f"**{head} is also the demo study's head** (the volume everyone opens in the viewer) and the"
        " head of the hallucination benchmark: figures on it are not from an untouched test set, and no"
        " such set exists here.",
    ]
    if choices is None:
        lines.append(
            "- Whether a run, setting or threshold was chosen on it was NOT recorded for this run:"
            " assume these figures are optimistic."
        )
    else:
        lines += [f"- {choice}" for choice in choices]
    return lines


def render_model_card(manifest: dict, record: dict, benchmark: str = "") -> str:
    card = manifest["model_card"]
    training = record["training"]
    heldout = record["heldout"]
    lines = [
        f"# Model card: {manifest['name']} {manifest['version']}",
        "",
        "**Every output of this model is SYNTHETIC.** The viewer labels it, exports mark it.",
        "",
    ]
    if record.get("quick"):
        lines += [
            "> QUICK RUN: reduced-size CPU training for checking the pipeline, not the shipped weights.",
            "",
        ]
    lines += [
        f"{manifest['description']}",
        "",
        "## Model",
        f"- Task: {manifest['task']}; works in 2D, {manifest['plane']} plane.",
        f"- Architecture: `{manifest['architecture']['type']}`"
        + (
            _residual_description(training)
            if "network" in training
            else f" (pix2pix/CycleGAN ResNet generator, ngf {manifest['architecture']['ngf']},"
            f" {manifest['architecture']['norm']} norm), trained as a pix2pix conditional GAN"
            f" (least-squares PatchGAN critic with weight {record['training'].get('adversarial_weight', 1.0)}"
            f" + {record['training'].get('lambda_l1', 100.0):g} x L1)."
            if manifest["architecture"]["type"] != "torchscript"
            else " DCGAN generator (latent 64 -> 64 x 64, batch norm), trained against a DCGAN critic"
            " (BCE, one-sided label smoothing 0.9)."
        ),
        f"- Weights: `{manifest['weights']['file']}`, {record['weights_bytes'] / 1e6:.1f} MB,"
        f" SHA-256 `{record['weights_sha256']}`.",
        f"- Paired training: {'yes' if card['paired'] else 'no'}.",
        f"- Normalisation: input {json.dumps(manifest['normalization']['input'])}, output"
        f" {json.dumps(manifest['normalization']['output'])}, network range [-1, 1].",
        "",
        "## Training data",
        card["training_data"],
        "",
        "## Training run",
        f"- {training['iterations_run']} of {training['iterations_planned']} planned iterations,"
        f" batch {training['batch_size']}, {training['seconds']} s on {training['device']}"
        f" (torch {training['torch']}), seed {training['seed']}, {training['trained_utc']}.",
        f"- Command: `{training['command']}` (data: `python -m app.plugins.training.data`).",
        "- Seeds fix data sampling and initialisation; GPU kernels are not bit-reproducible, so a"
        " retrain gives close, not identical, weights (the manifest hash then changes).",
        "",
        f"## Held-out evaluation ({record['heldout_head']}: not in the training data, not an untouched test)",
        *heldout_use(record),
        "",
    ]
    if "degradation" in record:
        lines += [record["degradation"]["heldout"], ""]
        lines += _metric_rows(heldout)
        lines += ["", *assessment(heldout)]
        if "lesions" in heldout:
            lesions = heldout["lesions"]
            lines += [
                "",
                f"- Residual |input - output| inside the lesions vs elsewhere in the brain: ratio"
                f" {lesions['residual_lesion_to_brain_ratio']} (higher = lesions stand out more).",
                f"- Fraction of the lesions' error removed: {lesions['lesion_error_removed_fraction']:.1%}.",
            ]
            if "healthy_brain_output_to_input" in lesions:
                lines.append(
                    "- Intensity bias on healthy brain (mean output / mean input outside the lesions):"
                    f" {lesions['healthy_brain_output_to_input']:.4f}."
                )
            if "residual_lesion_auroc" in lesions:
                lines.append(
                    "- VOXEL AUROC of the residual |input - output| (every lesion voxel vs every other brain"
                    " voxel of the evaluation slices, 0.5 = chance; lenient: a large healthy brain of"
                    f" near-zero residual). Not a region-level figure: {lesions['residual_lesion_auroc']:.3f}."
                    " Region-level figures: the hallucination check section."
                )
        if record.get("notes"):
            lines += ["", *(f"- {note}" for note in record["notes"])]
        lines += [
            "",
            "Metrics: intensities divided by the held-out head's 99.5th percentile and clipped to [0, 1]"
            " (data range 1); SSIM is the mean 2D SSIM over the slices (scikit-image). The plugin runs"
            " through the app's runtime (`app.plugins.runtime.synthesize`, no mixed precision).",
        ]
    else:
        lines += _generator_rows(heldout)
    if benchmark:
        lines += ["", benchmark]
    if training.get("recipe"):  # a named recipe: its exact command (and where its start weights are)
        start = training.get("initial_weights_source")
        reproduce = [*([start] if start else []), training["command"]]
    else:
        reproduce = [
            f"python -m app.plugins.training.shipped --plugins {record.get('folder', '') or '<folder>'} [--quick]"
        ]
    lines += card_closing(card, *reproduce)
    return "\n".join(lines)


def card_closing(card: dict, *train_commands: str) -> list[str]:
    """The last sections of every shipped card: intended use, known limits, how to reproduce."""
    return [
        "",
        "## Intended use",
        card["intended_use"],
        "",
        "## Known limits and failure modes",
        card["known_limits"],
        "",
        "## Reproduce",
        "```",
        "python -m app.plugins.training.data            # cache the two heads (build/training_data)",
        *train_commands,
        "```",
        "",
    ]


def main(argv: list[str] | None = None) -> int:
    """Re-render MODEL_CARD.md of plugin folders from their plugin.yaml and metrics.json."""
    import sys
    from pathlib import Path

    import yaml

    for folder in map(Path, argv if argv is not None else sys.argv[1:]):
        manifest = yaml.safe_load((folder / "plugin.yaml").read_text())
        record = json.loads((folder / "metrics.json").read_text())
        record.setdefault("folder", folder.name)
        (folder / "MODEL_CARD.md").write_text(render_model_card(manifest, record, benchmark_section(folder)))
        print(f"{folder}/MODEL_CARD.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
