"""The ModelRegistry port on MLflow, and the fare model as an MLflow pyfunc.

  registry.py   MlflowRegistry: the port's calls as MLflow runs, versions and aliases
  records.py    the port's records as MLflow tags, params, metrics and run artifacts
  pyfunc.py     the pyfunc (raw rides in, fares out) and how it is logged
  errors.py     MLflow's and HTTP's failures as taxifare errors; tracking-URI checks

Models logged to MLflow run `from taxifare_cli.adapters.registry.mlflow import
fare_pyfunc` (see pyfunc.PYFUNC_SCRIPT), and bootstrap names
`taxifare_cli.adapters.registry.mlflow:MlflowRegistry`: both names stay here.
Importing this package does not import mlflow.
"""

from taxifare_cli.adapters.registry.mlflow.pyfunc import (
    MODEL_ARTIFACT,
    PREDICTION_COLUMN,
    fare_pyfunc,
    predict_fares,
)
from taxifare_cli.adapters.registry.mlflow.registry import MlflowRegistry

__all__ = ["MODEL_ARTIFACT", "PREDICTION_COLUMN", "MlflowRegistry", "fare_pyfunc", "predict_fares"]
