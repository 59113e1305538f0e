"""Model-from-code entry for MLflow: the file ``log_model`` stores instead of a pickle."""

import mlflow

from glioma.diffusion.pyfunc import DDPMPyfunc

mlflow.models.set_model(DDPMPyfunc())
