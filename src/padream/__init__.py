"""padream: perturbed and adversarial dreaming (Deperrois et al., eLife 2022) as a library and CLI."""

__version__ = "0.1.0"
