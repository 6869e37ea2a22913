"""How familiar a row is to the labelled rows: where the semi-supervised classifier may speak.

With a handful of labels the classifier is confident far outside what it was shown: a fault kind
nobody labelled looks "not confirmed" to it, and the combined score would divide it away. So its
opinion is trusted in proportion to how close a row lies to the labelled rows, in the
classifier's own input space (each column scaled by its spread):

    trust = min(1, radius / distance to the nearest labelled row) ** TRUST_POWER

``radius`` is the `TRUST_QUANTILE` of the labelled rows' distances to their nearest other
labelled row: inside that, trust is full; twice as far, an eighth. Measured with
bench/bench_learning.py (6 plants, 10 labels): F1 gain +0.032 -> +0.057, recall kept.

Which labelled rows count depends on the way the classifier pushes (`vouched_trust`): it may
raise a score only near rows inside a confirmed label, lower one near rows analysts called
normal (false alarms and the reviewed context around every label, less alarms there that do
not reach the label: `core.labels.points.unjudged_alarms`). Measured with
bench/bench_learning.py (6 plants, F1 after 10 / 20 labels), same run: 0.853 / 0.922 trusting
every labelled row both ways, 0.853 / 0.927 now; letting only false-alarm rows vouch for
lowering too gave 0.846 / 0.906 (it kept one more of 14 flooding plants' faults in
bench/bench_learning_flood.py, 9 instead of 8, not worth the precision it cost).
"""

from __future__ import annotations

import numpy as np

from core.labels.points import POSITIVE, LabelPoints

TRUST_QUANTILE = 0.95
TRUST_POWER = 3.0
"""How fast trust falls with distance. At 1 a row three times the radius away still let the
classifier cut its score by a third: faults days from every verdict, on sensors no verdict
named, fell under the line on the aged plants of bench/bench_learning_flood.py. Measured there
(8 plants, 10 verdicts, with the untaught detector): every flood-found fault kept on 3 of 7
flooding plants at power 1, 4 at power 3."""
CONFIRMED, FALSE_ALARM, CONTEXT = 1, 0, 2
"""Kinds of labelled rows: inside a confirmed label, inside a false alarm, reviewed context."""
VOUCH_DOWN = (FALSE_ALARM, CONTEXT)
"""Rows that vouch for the classifier lowering a score: all that analysts saw as normal."""
MAX_REFERENCE_ROWS = 3_000
"""Labelled rows kept as the reference (a seeded sample beyond this): enough to cover a few
dozen labels, small enough to store in the model and search in milliseconds."""


def fit_familiarity(
    X: np.ndarray,
    rows: np.ndarray,
    quantile: float = TRUST_QUANTILE,
    kinds: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """The reference for `familiarity`: column scales, the labelled rows and the trust radius;
    with ``kinds`` (per row of ``X``: `CONFIRMED`, `FALSE_ALARM` or `CONTEXT`) each kept row's
    kind too, for `vouched_trust`."""
    from sklearn.neighbors import NearestNeighbors

    scale = np.nanstd(X, axis=0).astype(np.float64)
    scale[~(scale > 0)] = 1.0
    rows = np.asarray(rows)
    if len(rows) > MAX_REFERENCE_ROWS:
        rows = np.sort(np.random.default_rng(0).choice(rows, MAX_REFERENCE_ROWS, replace=False))
    ref = _scaled(X[rows], scale)
    radius = 0.0
    if len(ref) >= 2:
        gaps = NearestNeighbors(n_neighbors=2).fit(ref).kneighbors(ref)[0][:, 1]
        radius = float(np.quantile(gaps, quantile))
    out = {"scale": scale, "rows": ref.astype(np.float32), "radius": np.float64(radius)}
    if kinds is not None:
        out["kinds"] = np.asarray(kinds)[rows].astype(np.int8)
    return out


def familiarity(
    reference: dict[str, np.ndarray], X: np.ndarray, among: tuple[int, ...] | None = None
) -> np.ndarray:
    """Per row of ``X``, the trust in [0, 1] (1 = among the labelled rows; with ``among``, among
    the labelled rows of those kinds)."""
    from sklearn.neighbors import NearestNeighbors

    ref = np.asarray(reference["rows"], dtype=np.float64)
    if among is not None and "kinds" in reference:
        ref = ref[np.isin(reference["kinds"], among)]
    radius = float(reference["radius"])
    if len(ref) == 0 or not radius > 0:
        return np.zeros(len(X))
    distance = NearestNeighbors(n_neighbors=1).fit(ref).kneighbors(_scaled(X, reference["scale"]))
    return np.clip(radius / np.maximum(distance[0][:, 0], 1e-12), 0.0, 1.0) ** TRUST_POWER


def label_kinds(points: LabelPoints) -> np.ndarray:
    """Per row, its kind for `fit_familiarity` (rows no label covers: `CONTEXT`, never kept)."""
    return np.where(
        points.y == POSITIVE, CONFIRMED, np.where(points.inside, FALSE_ALARM, CONTEXT)
    ).astype(np.int8)


def vouched_trust(reference: dict[str, np.ndarray], X: np.ndarray, p: np.ndarray) -> np.ndarray:
    """The classifier's trust per row, by which way it pushes: raising a score (p >= 0.5) only
    as far as the row resembles a confirmed anomaly, lowering it as far as it resembles rows
    analysts saw as normal (`VOUCH_DOWN`; references fitted without kinds: any labelled row)."""
    if "kinds" not in reference:
        return familiarity(reference, X)
    down = familiarity(reference, X, VOUCH_DOWN)
    up = familiarity(reference, X, (CONFIRMED,))
    return np.where(np.asarray(p) < 0.5, down, up)


def _scaled(X: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return np.nan_to_num(np.asarray(X, dtype=np.float64) / scale)
