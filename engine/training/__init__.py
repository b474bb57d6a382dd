"""The vanishing-gradient lab: a deep MLP on Fashion-MNIST trained by several optimizers.

==================  =================================================================
``config.py``       :class:`TrainConfig` (validated), limits, default threads
``events.py``       the frozen event dataclasses a run streams
``loop.py``         the model and :func:`train`, the training iterator; metrics CSV
``adapter.py``      torch.optim where semantics match, :class:`EngineRuleOptimizer` otherwise
``data.py``         Fashion-MNIST: finding, validating, loading and downloading it;
                    seeded label noise
``sharpness.py``    λ_max (power iteration on Hessian-vector products), ε-sharpness
``landscape.py``    loss landscapes: filter-normalized random and PCA planes, slices
==================  =================================================================

Importing this package does not import torch (the window imports it at start-up).
"""

import os  # noqa: F401  (tests patch os.cpu_count through this module, as before the split)

from engine.training.adapter import (
    NETWORK_NEEDS,
    adapter_class,
    backend_name,
    check_trainable,
    make_torch_optimizer,
    torch_mappings,
    torch_optimizer_args,
)
from engine.training.config import (
    ACTIVATIONS,
    DEFAULT_OPTIMIZERS,
    EVENTS_PER_EPOCH,
    INPUT_SIZE,
    LANDSCAPE_PLANES,
    LIMITS,
    MAX_DEFAULT_THREADS,
    TrainConfig,
    default_threads,
    with_default_lr,
)
from engine.training.events import (
    BatchProgress,
    Diverged,
    EpochResult,
    Finished,
    LandscapePath,
    LandscapeRow,
    TrainingEvent,
    TrainingStarted,
)
from engine.training.loop import (
    CSV_COLUMNS,
    LANDSCAPE_COLUMNS,
    SHARPNESS_COLUMNS,
    TrainingHistory,
    build_model,
    format_duration,
    landscape_csv,
    metrics_csv,
    model_file_name,
    resolve_device,
    save_models,
    train,
    write_landscape_csv,
    write_metrics_csv,
)

__all__ = [
    "ACTIVATIONS",
    "BatchProgress",
    "CSV_COLUMNS",
    "DEFAULT_OPTIMIZERS",
    "Diverged",
    "EVENTS_PER_EPOCH",
    "EpochResult",
    "Finished",
    "INPUT_SIZE",
    "LANDSCAPE_COLUMNS",
    "LANDSCAPE_PLANES",
    "LIMITS",
    "LandscapePath",
    "LandscapeRow",
    "SHARPNESS_COLUMNS",
    "MAX_DEFAULT_THREADS",
    "NETWORK_NEEDS",
    "TrainConfig",
    "TrainingEvent",
    "TrainingHistory",
    "TrainingStarted",
    "adapter_class",
    "backend_name",
    "build_model",
    "check_trainable",
    "default_threads",
    "format_duration",
    "make_torch_optimizer",
    "landscape_csv",
    "metrics_csv",
    "model_file_name",
    "save_models",
    "resolve_device",
    "torch_mappings",
    "torch_optimizer_args",
    "train",
    "with_default_lr",
    "write_landscape_csv",
    "write_metrics_csv",
    "EngineRuleOptimizer",
]


def __getattr__(name: str):
    # EngineRuleOptimizer subclasses torch.optim.Optimizer: built on first use so that
    # importing this package does not import torch.
    if name == "EngineRuleOptimizer":
        return adapter_class()
    if name == "_TORCH_KNOWN":  # the old table, now read from each optimizer's spec
        return torch_mappings()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
