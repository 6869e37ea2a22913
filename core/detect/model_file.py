"""Fitted models as skops files (never pickle), with what they were made for, loaded safely.

A file is skops' zip plus ``vigil.json``: the model format, the Vigil and library versions that
wrote it, its sensors, feature settings and alarm lines, readable without loading the model. skops
lists the types a file would create; `load_fitted` refuses any type outside `trusted_types` (Vigil's
own classes, its detectors, the scikit-learn pieces they hold), so a file a user hands over cannot
run code, and refuses a file of a newer model format in one sentence. Runs keep their
`AnomalyModel` this way; `core.learn.model_files` adds the version's `LearnedModel` on top.
"""

from __future__ import annotations

import copy
import importlib.metadata
import io
import json
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import fields, replace
from typing import Any

import numpy as np
import pandas as pd
import skops.io as sio
from skops.io.exceptions import UntrustedTypesFoundException

from core.detect.model import AnomalyModel, AssetPipeline
from core.errors import DataError

MODEL_FORMAT = 1
"""Bump when a file this Vigil writes cannot be read by an older one (e.g. a class changed)."""
META_NAME = "vigil.json"
TRUSTED_TYPES = (
    "core.detect.model.AnomalyModel",
    "core.detect.model.AssetPipeline",
    "core.detect.features.FeatureBuilder",
    "core.detect.features.FeatureConfig",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.tree._tree.Tree",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",  # the autoencoder's MLP
)
"""Types a fitted Vigil model may contain beyond skops' defaults, besides Vigil's detectors."""
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


def trusted_types(extra: Sequence[str] = ()) -> tuple[str, ...]:
    """`TRUSTED_TYPES`, ``extra`` and every detector class Vigil defines (subclasses of
    BaseDetector in `core`), so a new registered detector is trusted and nothing outside is."""
    from core.detect.detectors.registry import BaseDetector

    found, todo = set(), list(BaseDetector.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__.startswith("core."):
            found.add(f"{cls.__module__}.{cls.__qualname__}")
    return TRUSTED_TYPES + tuple(extra) + tuple(sorted(found))


VERSIONED_PACKAGES = ("vigil", "scikit-learn", "numpy", "pandas", "duckdb")


def library_versions() -> dict[str, str]:
    """Versions of the libraries a run's numbers depend on, for reproducing it later."""
    versions = {}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "unknown"
    return versions


def vigil_version() -> str:
    try:
        return importlib.metadata.version("vigil")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def base_model(model: Any) -> AnomalyModel:
    """The `AnomalyModel` inside a model (itself, or a version's ``base``)."""
    return model if isinstance(model, AnomalyModel) else model.base


def model_sensors(model: Any) -> list[str]:
    """The sensors a fitted model scores, in its order."""
    return [str(s) for s in base_model(model).sensors_]


def describe(model: Any) -> dict[str, Any]:
    """What a file says about its model without loading it: sensors, features, alarm lines."""
    meta: dict[str, Any] = {
        "format": MODEL_FORMAT,
        "vigil": vigil_version(),
        "kind": type(model).__name__,
        "versions": {**library_versions(), "skops": importlib.metadata.version("skops")},
    }
    base = model if isinstance(model, AnomalyModel) else getattr(model, "base", None)
    if not (isinstance(base, AnomalyModel) and hasattr(base, "pipelines_")):
        return meta  # not a fitted Vigil model: loading it says what it is
    cfg = base.feature_config
    meta.update({
        "detector": base.detector,
        "params": {k: v for k, v in base.params.items() if isinstance(v, int | float | str)},
        "sensors": model_sensors(model),
        "assets": sorted(base.pipelines_),
        "features": {"families": list(cfg.families), "window": cfg.window,
                     "recenter": cfg.recenter},
        "thresholds": {a: float(p.threshold) for a, p in base.pipelines_.items()},
        "alarm_line": float(getattr(model, "threshold", 1.0)),
    })  # fmt: skip
    return meta


# --- frames: skops cannot store DataFrames, pipelines keep one ------------------------------------

_FRAME = "__vigil_frame__"


def _frame_state(frame: pd.DataFrame) -> dict[str, Any]:
    """A DataFrame as plain arrays, column dtypes kept."""
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


def _map_frames(model: Any, convert: Callable[[Any], Any]) -> Any:
    """A copy of the model whose pipelines' DataFrame fields went through ``convert``: an
    `AnomalyModel`'s, or those of the ones a model holds as ``base`` and ``untaught`` (a
    version taught false alarms keeps the detector fitted without them)."""
    if not isinstance(model, AnomalyModel) and getattr(model, "untaught", None) is not None:
        out = copy.copy(model)
        out.untaught = _map_frames(model.untaught, convert)
        return _map_frames_of_base(out, convert)
    return _map_frames_of_base(model, convert)


def _map_frames_of_base(model: Any, convert: Callable[[Any], Any]) -> Any:
    base = model if isinstance(model, AnomalyModel) else getattr(model, "base", None)
    if not hasattr(base, "pipelines_"):
        return model  # not fitted (or not ours): nothing to convert

    def pipe_copy(pipe: AssetPipeline) -> AssetPipeline:
        changes = {}
        for f in fields(pipe):
            value = getattr(pipe, f.name)
            if isinstance(value, pd.DataFrame) or (isinstance(value, dict) and _FRAME in value):
                changes[f.name] = convert(value)
        return replace(pipe, **changes) if changes else pipe

    new_base = copy.copy(base)
    new_base.pipelines_ = {k: pipe_copy(v) for k, v in base.pipelines_.items()}
    new_base.pooled_ = pipe_copy(base.pooled_)
    if base is model:
        return new_base
    out = copy.copy(model)
    out.base = new_base
    return out


# --- the zip: skops' files plus vigil.json --------------------------------------------------------


def _zip_files(data: bytes) -> dict[zipfile.ZipInfo, bytes] | None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            return {info: z.read(info.filename) for info in z.infolist()}
    except (zipfile.BadZipFile, ValueError, OSError):
        return None  # not a zip: skops' own check names the problem


def _zip_member(data: bytes, name: str) -> bytes | None:
    """One file of the zip, without inflating the others (a forest's file holds thousands)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            return z.read(name) if name in z.NameToInfo else None
    except (zipfile.BadZipFile, ValueError, OSError):
        return None


def _zip(files: dict[zipfile.ZipInfo, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for info, content in files.items():
            z.writestr(info, content)
    return out.getvalue()


def with_meta(data: bytes, meta: dict[str, Any]) -> bytes:
    """The skops file with ``vigil.json`` set to ``meta`` (an older file gains it)."""
    files = _zip_files(data)
    if files is None:
        raise DataError("This is not a skops model file Vigil can read.")
    files = {i: c for i, c in files.items() if i.filename != META_NAME}
    files[zipfile.ZipInfo(META_NAME, date_time=(2026, 1, 1, 0, 0, 0))] = json.dumps(
        meta, indent=1, default=str
    ).encode()
    return _zip(files)


def read_meta(data: bytes) -> dict[str, Any] | None:
    """``vigil.json`` of a model file, or None (files saved before it, foreign files)."""
    raw = _zip_member(data, META_NAME)
    try:
        return None if raw is None else json.loads(raw)
    except ValueError:
        return None


def check_format(data: bytes) -> None:
    """`DataError` when the file was written in a model format newer than this Vigil reads."""
    meta = read_meta(data) or {}
    fmt = meta.get("format", 1)
    if isinstance(fmt, int) and fmt > MODEL_FORMAT:
        raise DataError(
            f"This model file was saved by Vigil {meta.get('vigil', '?')} in model format {fmt}, "
            f"newer than this Vigil {vigil_version()} can read (format {MODEL_FORMAT} at most): "
            "upgrade Vigil to use it."
        )


def _with_current_modules(data: bytes) -> bytes:
    """The file with every former Vigil module path replaced by today's, so files saved by an
    older Vigil load (the trust check then sees only today's paths)."""
    raw = _zip_member(data, "schema.json")
    if raw is None:
        return data
    try:
        tree = json.loads(raw)
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
    files = _zip_files(data) or {}
    schema = next(i for i in files if i.filename == "schema.json")
    files[schema] = json.dumps(tree).encode()
    return _zip(files)


def dump_fitted(model: Any) -> bytes:
    """A fitted `AnomalyModel` (or a model holding one as ``base``) as skops bytes with its
    ``vigil.json``."""
    data = sio.dumps(_map_frames(model, _frame_state), compression=zipfile.ZIP_DEFLATED)
    return with_meta(data, describe(model))


def _untrusted(data: bytes, extra: Sequence[str]) -> list[str]:
    """`untrusted_types` of a file whose module paths are current."""
    try:
        found = sio.get_untrusted_types(data=data)
    except Exception as exc:  # a corrupt or foreign file: skops raises many kinds
        raise DataError(f"This is not a skops model file Vigil can read: {exc}") from exc
    allowed = trusted_types(extra)
    return sorted(t for t in found if t not in allowed)


def untrusted_types(data: bytes, extra: Sequence[str] = ()) -> list[str]:
    """Types in a skops file that Vigil does not trust (empty when the file is safe to load)."""
    return _untrusted(_with_current_modules(data), extra)


def load_fitted(data: bytes, extra: Sequence[str] = (), expect: tuple[type, ...] = ()) -> Any:
    """Load skops bytes after the format and trusted-types checks; refuse otherwise.

    ``extra`` are further trusted type names, ``expect`` the classes the caller accepts
    (default: `AnomalyModel`). skops audits the file's types against the trusted list before
    it constructs anything, so the file is read once (the list of untrusted types is only
    worked out to name them when it refuses)."""
    check_format(data)
    data = _with_current_modules(data)
    try:
        model = sio.loads(data, trusted=list(trusted_types(extra)))
    except UntrustedTypesFoundException:
        unknown = _untrusted(data, extra)
        raise DataError(
            "Refusing to load this model file: it contains types Vigil does not trust "
            f"({', '.join(unknown)}). Only models saved by Vigil can be loaded."
        ) from None
    except Exception as exc:  # a corrupt or foreign file: skops raises many kinds
        raise DataError(f"This is not a skops model file Vigil can read: {exc}") from exc
    if not isinstance(model, expect or (AnomalyModel,)):
        raise DataError(f"This model file holds a {type(model).__name__}, not a Vigil model.")
    return _map_frames(model, _frame_from_state)
