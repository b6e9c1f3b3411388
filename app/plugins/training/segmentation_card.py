"""MODEL_CARD.md of the shipped tissue segmentation plugin, from its manifest and metrics.json."""

from __future__ import annotations

import json

from app.plugins.training.model_card import card_closing, heldout_use

CLASS_ROWS = (("csf", "CSF"), ("grey_matter", "grey matter"), ("white_matter", "white matter"))


def _label_rows(labels: list[dict]) -> list[str]:
    rows = ["| value | name | colour (RGB) | code |", "| --- | --- | --- | --- |"]
    for entry in labels:
        code = entry.get("code")
        coded = f"{code['scheme']} {code['value']} \"{code['meaning']}\"" if code else "-"
        rows.append(f"| {entry['value']} | {entry['name']} | {tuple(entry['color'])} | {coded} |")
    return rows


def _dice_rows(heldout: dict) -> list[str]:
    rows = [
        "| class | reference voxels | Dice, this plugin | Dice, baseline |",
        "| --- | --- | --- | --- |",
    ]
    for key, name in CLASS_ROWS:
        rows.append(
            f"| {name} | {heldout['reference_voxels'][key]} | {heldout['plugin_dice'][key]:.4f}"
            f" | {heldout['baseline_dice'][key]:.4f} |"
        )
    return rows


def render_tissue_card(manifest: dict, record: dict) -> str:
    card = manifest["model_card"]
    training = record["training"]
    labels = record["training_labels"]
    heldout = record["heldout"]
    lines = [
        f"# Model card: {manifest['name']} {manifest['version']}",
        "",
        "Its output is a derived label map (never marked synthetic); it is not a diagnostic segmentation.",
        "",
    ]
    if record.get("quick"):
        lines += ["> QUICK RUN: reduced CPU training for checking the pipeline, not the shipped weights.", ""]
    lines += [
        manifest["description"],
        "",
        "## Model",
        f"- Task: segmentation; works in 2D, {manifest['plane']} plane, 1 mm pixels (the runtime resamples).",
        f"- Network: {training['network']}, {training['parameters']} parameters, TorchScript.",
        f"- Weights: `{manifest['weights']['file']}`, {record['weights_bytes'] / 1e6:.2f} MB,"
        f" SHA-256 `{record['weights_sha256']}`.",
        f"- Normalisation: input {json.dumps(manifest['normalization']['input'])} to [-1, 1]; the label is the"
        " argmax over the output channels.",
        "",
        "## Labels",
        *_label_rows(manifest["labels"]),
        "",
        "## Training data and labels",
        card["training_data"],
        "",
        f"- Mixture on the training head: means {labels['means']}, SDs {labels['sds']}, weights {labels['weights']}"
        f" (CSF, grey, white; T1 units); voxels {labels['voxels']}.",
        "- White-matter median intensity in fifths of each array axis (k, j, i):"
        f" {labels['wm_median_by_fifths_of_each_axis']} — the drift a bias field would cause, left uncorrected.",
        "",
        "## Training run",
        f"- {training['iterations_run']} of {training['iterations_planned']} planned iterations, batch"
        f" {training['batch_size']}, crops {training['crop']} px, {training['seconds']} s on {training['device']}"
        f" ({training['threads']} threads, torch {training['torch']}), seed {training['seed']}, {training['trained_utc']}.",
        f"- Command: `{training['command']}` (data: `python -m app.plugins.training.data`).",
        "",
        f"## Held-out evaluation ({heldout['head']}: not in the training data, not an untouched test)",
        *heldout_use(record),
        "",
        f"Reference: {heldout['reference']}. The plugin runs through the app's runtime"
        f" (`app.plugins.runtime.segment`, {heldout['plugin_seconds']} s on the CPU); the baseline is"
        f" {heldout['baseline']}, with the non-zero voxels of the skull-stripped T1 as its brain mask.",
        "",
        *_dice_rows(heldout),
        "",
        f"- Brain (any tissue label) vs the non-zero head: Dice {heldout['plugin_brain_vs_head_dice']:.4f}.",
        "- The MNI152 head is an average of 152 brains: its edges are blurred, so partial-volume voxels are"
        " many and both classifiers split them by intensity, where the probability maps split them by the"
        " individual segmentations averaged.",
    ]
    lines += card_closing(card, "python -m app.plugins.training.segmentation    # or plugins/mr_t1_brain_tissue/train.py [--quick]")
    return "\n".join(lines)
