"""glioma: an MLflow-tracked study of DDPM-synthesised MRI for glioma grading.

Layers (imports point downwards only): cli -> pipeline -> evaluate -> classify -> scoring ->
diffusion -> data -> tracking -> config. See ``DESIGN.md`` in the shared folder.
"""

__version__ = "0.1.0"
