"""Model files: a `LearnedModel` as skops bytes (never pickle), and loading them safely.

The file format, the format check and the trusted-types check are `core.detect.model_file`
(runs keep their `AnomalyModel` in the same format); this module adds the version's
`LearnedModel`, so a model file a user uploads cannot run code.
"""

from __future__ import annotations

from typing import Any

from core.detect import model_file
from core.detect.model import AnomalyModel
from core.learn.learned_model import LearnedModel

LEARNED = "core.learn.learned_model.LearnedModel"
TRUSTED_TYPES = (LEARNED, *model_file.TRUSTED_TYPES)
"""Types a Vigil model may contain beyond skops' defaults, besides Vigil's own detectors."""
FORMER_MODULES = model_file.FORMER_MODULES


def trusted_types() -> tuple[str, ...]:
    """`TRUSTED_TYPES` plus every detector class Vigil defines."""
    return model_file.trusted_types((LEARNED,))


def dump_model(model: LearnedModel) -> bytes:
    """The model as skops bytes (a zip of JSON and arrays, plus ``vigil.json``; no pickle)."""
    return model_file.dump_fitted(model)


def untrusted_types(data: bytes) -> list[str]:
    """Types in a skops file that Vigil does not trust (empty when the file is safe to load)."""
    return model_file.untrusted_types(data, (LEARNED,))


def load_model(data: bytes) -> LearnedModel:
    """Load a version's skops bytes after the format and trusted-types checks."""
    return model_file.load_fitted(data, (LEARNED,), (LearnedModel,))


def load_any(data: bytes) -> Any:
    """A version's `LearnedModel` or a run's (or ``score --save-model``'s) `AnomalyModel`."""
    return model_file.load_fitted(data, (LEARNED,), (LearnedModel, AnomalyModel))
