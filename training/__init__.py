"""Training: the loop (``engine.Trainer``), its callbacks (``callbacks``: validation, verification, early
stopping, the log), its settings (``config``), and one module per job around it: ``data`` (splits, samplers,
loaders), ``objective`` (head module, optimiser, schedule), ``teacher`` (distillation's table),
``checkpoints``, ``distributed``, ``embedding`` (the live model as a FaceEmbedder) and ``log``.
Imports flow facedata -> models_definition -> id_rate -> training; ``id_rate.scoring`` (numpy and
``facedata.errors`` only: the one normalisation and cosine scoring) is a leaf every layer may use."""
from .callbacks import Callback, default_callbacks
from .config import SettingError, TrainConfig
from .data import make_splits
from .engine import Trainer, train
from .errors import TrainingError

__all__ = ["Callback", "SettingError", "TrainConfig", "Trainer", "TrainingError", "default_callbacks", "make_splits",
           "train"]
