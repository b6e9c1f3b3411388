"""Run a plugin's reverse generator on its own output: the cycle reconstruction G_BA(G_AB(x)).

The manifest's ``reverse`` entry names only an architecture and weights; its intensity scaling
follows from the forward one. The reverse generator reads the forward output's domain (the
forward ``output`` scaling, mapped into the network range) and writes the input's domain (the
forward ``input`` scaling, inverted with the bounds fitted on the original volume and recorded
in the synthesized volume's provenance). The reconstruction is on the same grid as the original,
so the cycle residual |reconstruction - original| can be computed voxel for voxel.
"""

from __future__ import annotations

from dataclasses import replace

from app.core.volume import Volume
from app.plugins.errors import PluginError
from app.plugins.loading import LoadedPlugin
from app.plugins.runtime import RunOptions, SynthesisResult, synthesize


def _reverse_normalization(normalization: dict, input_scaling: dict) -> dict:
    forward_input, forward_output = normalization["input"], normalization["output"]
    if forward_output["method"] == "same_as_input":
        reverse_input = (
            dict(input_scaling, method="window") if input_scaling["method"] != "none" else {"method": "none"}
        )
    else:
        reverse_input = dict(forward_output)
    if forward_input["method"] == "none":
        reverse_output = {"method": "none"}
    else:  # window bounds, or the percentiles measured on the original volume
        reverse_output = {"method": "window", "low": input_scaling["low"], "high": input_scaling["high"]}
    reverse = {"input": reverse_input, "output": reverse_output}
    if "network_range" in normalization:
        reverse["network_range"] = normalization["network_range"]
    return reverse


def reconstruct_with_reverse(
    plugin: LoadedPlugin, synthesized: Volume, options: RunOptions | None = None, **callbacks
) -> SynthesisResult:
    """G_BA applied to ``synthesized`` (an output of ``plugin``); raises if no reverse is declared."""
    reverse = plugin.reverse_generator()
    if reverse is None:
        raise PluginError(f"{plugin.manifest.name} declares no reverse generator; no cycle check possible")
    if synthesized.provenance is None or synthesized.provenance.plugin_name != plugin.manifest.name:
        raise PluginError(
            "the volume to reconstruct must be an output of this plugin (its provenance says otherwise)"
        )
    generator, sha256 = reverse
    m = plugin.manifest
    input_scaling = synthesized.provenance.parameters["input_scaling"]
    reverse_manifest = replace(
        m,
        name=f"{m.name}-reverse",
        task=m.task,
        input_modality=m.output_modality,
        input_modalities=(m.output_modality,),
        input_contrast=m.output_contrast,
        output_modality=m.input_modality,
        output_contrast=m.input_contrast,
        output_units="",
        normalization=_reverse_normalization(m.normalization, input_scaling),
        architecture=m.reverse_architecture,
        weights=m.reverse_weights,
        reverse_architecture=None,
        reverse_weights=None,
    )
    return synthesize(LoadedPlugin(reverse_manifest, generator, sha256), synthesized, options, **callbacks)
