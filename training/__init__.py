"""Training: one engine for every backbone and head (``engine``), its settings (``config``) and the
per-run log and curves (``log``). Imports flow facedata -> models_definition -> id_rate -> training."""
from .config import TrainConfig
from .engine import Trainer, TrainingError, make_splits, train

__all__ = ["TrainConfig", "Trainer", "TrainingError", "make_splits", "train"]
