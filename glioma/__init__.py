"""glioma: an MLflow-tracked study of DDPM-synthesised MRI for glioma grading.

Layers, top to bottom (imports point down or sideways only): cli -> pipeline -> config ->
scoring -> evaluate -> classify -> diffusion -> data -> tracking -> base; base = names, errors
(with the two checks every dataclass uses), fileio, devices, packaging, parallel. The config
sits above the libraries it configures: they never import it. See ``docs/DESIGN.md``;
``tests/test_layers.py`` reads every import.
"""

import os

__version__ = "0.1.0"

# MLflow's usage telemetry is off unless the user turns it on (MLFLOW_DISABLE_TELEMETRY=false):
# this tool runs on hospital machines, often offline, and offline MLflow 3 stops its telemetry
# client from a background thread that deletes an environment variable while the main thread may
# be reading the environment (a KeyError '_MLFLOW_TELEMETRY_SESSION_ID' out of ``set_tags``, seen
# at the start of a study on 2026-12-03). Set here, before any module of the package imports
# MLflow, in every process that imports the package (Ray workers too).
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
