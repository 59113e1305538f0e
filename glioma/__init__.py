"""glioma: an MLflow-tracked study of DDPM-synthesised MRI for glioma grading.

Layers, top to bottom (imports point down or sideways only): cli -> pipeline -> scoring ->
evaluate -> classify -> diffusion -> data -> tracking -> config -> base; base = names, errors,
fileio, devices, packaging, parallel. See ``docs/DESIGN.md``; ``tests/test_layers.py`` reads
every import.
"""

__version__ = "0.1.0"
