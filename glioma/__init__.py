"""glioma: an MLflow-tracked study of DDPM-synthesised MRI for glioma grading.

Layers, top to bottom (imports point down or sideways only): cli -> pipeline -> config ->
scoring -> evaluate -> classify -> diffusion -> data -> tracking -> base; base = names, errors
(with the two checks every dataclass uses), fileio, devices, packaging, parallel. The config
sits above the libraries it configures: they never import it. See ``docs/DESIGN.md``;
``tests/test_layers.py`` reads every import.
"""

__version__ = "0.1.0"
