"""Generative Cooperative Learning (Zaheer et al., CVPR 2022): config, networks, labels, training.

Public API:
    GCLConfig, from_dict, get_preset, preset_names      (gcl.config)
    get_variant, variant_names                          (gcl.variants)
    TrainingData, TrainResult, train                    (gcl.train)
    save_models, load_models, score, Models             (gcl.train, gcl.models)
"""

from gclvad.gcl.config import BadConfigError, GCLConfig, from_dict, get_preset, preset_names
from gclvad.gcl.models import Models
from gclvad.gcl.train import (
    BadTrainingDataError,
    TrainingData,
    TrainResult,
    load_models,
    save_models,
    score,
    train,
)
from gclvad.gcl.variants import LABEL_READING_VARIANTS, get_variant, variant_names

__all__ = [
    "BadConfigError",
    "BadTrainingDataError",
    "GCLConfig",
    "LABEL_READING_VARIANTS",
    "Models",
    "TrainResult",
    "TrainingData",
    "from_dict",
    "get_preset",
    "get_variant",
    "load_models",
    "preset_names",
    "save_models",
    "score",
    "train",
    "variant_names",
]
