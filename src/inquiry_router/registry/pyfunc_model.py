"""MLflow "models from code" entry point: MLflow copies this file next to the registered model
and runs it at load time, so the model is rebuilt from code rather than unpickled."""

from mlflow.models import set_model

from inquiry_router.registry import IntentModel

set_model(IntentModel())
