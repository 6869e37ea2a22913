"""Model files: a `LearnedModel` as skops bytes (never pickle), and loading them safely.

skops lists the types a file would create; `load_model` refuses any type outside
`trusted_types` (Vigil's own classes, its detectors, and the scikit-learn pieces they hold), so
a model file a user uploads cannot run code.
"""

from __future__ import annotations

import copy
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import fields, replace
from typing import Any

import numpy as np
import pandas as pd
import skops.io as sio

from core.detect.model import AssetPipeline
from core.errors import DataError
from core.learn.learned_model import LearnedModel

TRUSTED_TYPES = (
    "core.learn.learned_model.LearnedModel",
    "core.detect.model.AnomalyModel",
    "core.detect.model.AssetPipeline",
    "core.detect.features.FeatureBuilder",
    "core.detect.features.FeatureConfig",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.tree._tree.Tree",
)
"""Types a Vigil model may contain beyond skops' defaults, besides Vigil's own detectors."""


def trusted_types() -> tuple[str, ...]:
    """`TRUSTED_TYPES` plus every detector class Vigil defines (subclasses of BaseDetector in
    `core`), so a new registered detector is trusted and nothing from outside Vigil is."""
    from core.detect.detectors.registry import BaseDetector

    found, todo = set(), list(BaseDetector.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__.startswith("core."):
            found.add(f"{cls.__module__}.{cls.__qualname__}")
    return TRUSTED_TYPES + tuple(sorted(found))


def dump_model(model: LearnedModel) -> bytes:
    """The model as skops bytes (a zip of JSON and arrays; no pickle)."""
    return sio.dumps(_map_frames(model, _frame_state), compression=zipfile.ZIP_DEFLATED)


_FRAME = "__vigil_frame__"


def _frame_state(frame: pd.DataFrame) -> dict[str, Any]:
    """A DataFrame as plain arrays (skops cannot store frames), column dtypes kept."""
    columns = [str(c) for c in frame.columns]
    state = {_FRAME: np.asarray(columns, dtype=str), "index": frame.index.to_numpy()}
    state.update({f"c{i}": frame[c].to_numpy() for i, c in enumerate(frame.columns)})
    return state


def _frame_from_state(state: Any) -> Any:
    if not (isinstance(state, dict) and _FRAME in state):
        return state
    columns = [str(c) for c in state[_FRAME]]
    data = {c: state[f"c{i}"] for i, c in enumerate(columns)}
    return pd.DataFrame(data, index=state["index"], columns=columns)


def _map_frames(model: LearnedModel, convert: Callable[[Any], Any]) -> LearnedModel:
    """A copy of the model whose pipelines' DataFrame fields went through ``convert``."""
    if not hasattr(model.base, "pipelines_"):
        return model  # not fitted (or not ours): nothing to convert
    base = copy.copy(model.base)

    def pipe_copy(pipe: AssetPipeline) -> AssetPipeline:
        changes = {}
        for f in fields(pipe):
            value = getattr(pipe, f.name)
            if isinstance(value, pd.DataFrame) or (isinstance(value, dict) and _FRAME in value):
                changes[f.name] = convert(value)
        return replace(pipe, **changes) if changes else pipe

    base.pipelines_ = {k: pipe_copy(v) for k, v in model.base.pipelines_.items()}
    base.pooled_ = pipe_copy(model.base.pooled_)
    out = copy.copy(model)
    out.base = base
    return out


FORMER_MODULES = {
    "core.versions": "core.learn.learned_model",  # LearnedModel before 2026-11-26
    "core.learned_model": "core.learn.learned_model",
    "core.model": "core.detect.model",
    "core.features": "core.detect.features",
    "core.detectors": "core.detect.detectors.registry",
    "core.detectors_base": "core.detect.detectors.base",
    "core.detectors_pca": "core.detect.detectors.pca",
    "core.detectors_sklearn": "core.detect.detectors.scikit",
}
"""Where classes saved by an older Vigil (before core/ was split by stage) live now."""


def _with_current_modules(data: bytes) -> bytes:
    """The skops file with every former Vigil module path replaced by today's, so model files
    saved by an older Vigil load (the trust check then sees only today's paths)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            files = {info: z.read(info.filename) for info in z.infolist()}
    except (zipfile.BadZipFile, ValueError):
        return data  # not a zip: skops' own check below names the problem
    schema = next((i for i in files if i.filename == "schema.json"), None)
    if schema is None:
        return data
    try:
        tree = json.loads(files[schema])
    except ValueError:
        return data

    def renamed(node: Any) -> tuple[Any, bool]:
        changed = False
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if key == "__module__" and value in FORMER_MODULES:
                    value, changed = FORMER_MODULES[value], True
                else:
                    value, sub = renamed(value)
                    changed |= sub
                out[key] = value
            return out, changed
        if isinstance(node, list):
            items = [renamed(v) for v in node]
            return [v for v, _ in items], any(c for _, c in items)
        return node, False

    tree, changed = renamed(tree)
    if not changed:
        return data
    files[schema] = json.dumps(tree).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for info, content in files.items():
            z.writestr(info, content)
    return out.getvalue()


def untrusted_types(data: bytes) -> list[str]:
    """Types in a skops file that Vigil does not trust (empty when the file is safe to load)."""
    data = _with_current_modules(data)
    try:
        found = sio.get_untrusted_types(data=data)
    except Exception as exc:  # a corrupt or foreign file: skops raises many kinds
        raise DataError(f"This is not a skops model file Vigil can read: {exc}") from exc
    allowed = trusted_types()
    return sorted(t for t in found if t not in allowed)


def load_model(data: bytes) -> LearnedModel:
    """Load skops bytes after checking every type against `TRUSTED_TYPES`; refuse otherwise."""
    data = _with_current_modules(data)
    unknown = untrusted_types(data)
    if unknown:
        raise DataError(
            "Refusing to load this model file: it contains types Vigil does not trust "
            f"({', '.join(unknown)}). Only models saved by Vigil can be loaded."
        )
    trusted = [t for t in sio.get_untrusted_types(data=data) if t in trusted_types()]
    model = sio.loads(data, trusted=trusted)
    if not isinstance(model, LearnedModel):
        raise DataError(f"This model file holds a {type(model).__name__}, not a Vigil model.")
    return _map_frames(model, _frame_from_state)
