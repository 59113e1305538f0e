"""Model-from-code entry for MLflow: the file ``log_model`` stores instead of a pickle."""

import mlflow

from glioma.classify.ensemble import EnsemblePyfunc

mlflow.models.set_model(EnsemblePyfunc())
