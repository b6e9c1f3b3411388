"""SynthView: a viewer and annotation workstation for GAN-synthesized medical images."""

__version__ = "0.1.0"
