"""Command line: `python -m core {ingest,demo,datasets,inject,score,retrain}`.

Every user error is one line on stderr and exit code 2; nothing half-written stays behind.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from core.errors import CoreError

EXIT_USER_ERROR = 2


def _db_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db", type=Path, default=None, help="workspace DuckDB file (default: $VIGIL_DB or data/)"
    )


def _cmd_ingest(args: argparse.Namespace) -> int:
    from core import store
    from core.ingest import ingest_file, label_choice

    con = store.open_workspace(args.db)
    try:
        result = ingest_file(con, args.file, name=args.name, labels=label_choice(args.labels))
    finally:
        con.close()
    info = result.dataset
    print(
        f"Loaded {info.name!r}: {info.n_rows:,} rows, {len(info.sensors)} sensors, "
        f"{len(info.assets)} asset(s), {info.time_start} .. {info.time_end}"
    )
    for line in result.warnings:
        print(f"warning: {line}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from core import store
    from core.synth import load_demo

    con = store.open_workspace(args.db)
    if args.if_empty and store.list_datasets(con):
        con.close()
        print("The workspace already holds data; no demo plant added.")
        return 0
    try:
        info = load_demo(
            con, seed=args.seed, n_assets=args.assets, rows_per_asset=args.rows, name=args.name
        )
    finally:
        con.close()
    print(
        f"Demo plant {info.name!r}: {info.n_rows:,} rows, {len(info.assets)} assets, "
        f"{len(info.sensors)} sensors"
    )
    return 0


def _cmd_datasets(args: argparse.Namespace) -> int:
    from core import store

    con = store.open_workspace(args.db)
    try:
        for info in store.list_datasets(con):
            print(
                f"{info.id}\t{info.name}\t{info.n_rows} rows\t{len(info.sensors)} sensors\t"
                f"{len(info.assets)} assets\t{info.source_file}"
            )
    finally:
        con.close()
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    from core.detect import score_files
    from core.detect.detectors.registry import params_from_text

    summary = score_files(
        args.train,
        args.data,
        args.out,
        detector=args.detector,
        threshold_quantile=args.threshold_quantile,
        params=params_from_text(args.detector, args.param),
    )
    print(summary, file=sys.stderr)
    return 0


def _cmd_retrain(args: argparse.Namespace) -> int:
    from core import store
    from core.learn import RetrainConfig, promote, retrain

    con = store.open_workspace(args.db)
    try:
        info = store.get_dataset(con, int(args.dataset) if args.dataset.isdigit() else args.dataset)
        objective = "budget" if args.budget_per_day is not None else "f1"
        config = RetrainConfig(
            info.id,
            objective,
            args.budget_per_day,
            not args.no_semi,
            learn_false_alarms=args.learn_false_alarms,
        )
        result = retrain(con, config, args.analyst)
        v, verdict = result.version, result.comparison
        held = v.metrics["held_out"]
        print(
            f"v{v.id} on {info.name!r}: threshold {v.threshold:.4g} ({objective}), "
            f"{len(v.label_ids)} labels, classifier {'yes' if v.semi_supervised else 'no'}; "
            f"held-out precision {held['precision']:.3f} recall {held['recall']:.3f} "
            f"F1 {held['f1']:.3f}"
        )
        for note in result.notes:
            print(f"note: {note}")
        print(f"{'proposed' if verdict.proposed else 'not proposed'}: {verdict.reason}")
        if args.promote and verdict.proposed:
            promote(con, v.id, args.analyst, "cli: proposed by champion/challenger")
            print(f"v{v.id} is now the active model")
    finally:
        con.close()
    return 0


def _cmd_inject(args: argparse.Namespace) -> int:
    from core import store
    from core.synth import inject_into_dataset

    con = store.open_workspace(args.db)
    try:
        info = store.get_dataset(con, int(args.dataset) if args.dataset.isdigit() else args.dataset)
        copy = inject_into_dataset(con, info.id, args.faults, args.kinds, args.seed, args.name)
    finally:
        con.close()
    print(f"Test copy {copy.name!r} (dataset {copy.id}): {copy.quality.notes[-1]}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="load a CSV, Parquet or Excel file into the workspace")
    p.add_argument("file", type=Path)
    p.add_argument("--name", default=None, help="dataset name (default: the file name)")
    p.add_argument(
        "--labels",
        default=None,
        metavar="COLS",
        help="comma-separated 0/1 columns holding ground truth, kept as labelled windows and "
        "never as sensors; 'none' loads every column as a sensor (default: columns named like "
        "anomaly, label, fault, changepoint... that hold only 0 and 1)",
    )
    _db_arg(p)
    p.set_defaults(func=_cmd_ingest)

    p = sub.add_parser("demo", help="generate the synthetic demo plant into the workspace")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--assets", type=int, default=3)
    p.add_argument("--rows", type=int, default=50_000, help="rows per asset")
    p.add_argument("--name", default=None)
    p.add_argument(
        "--if-empty", action="store_true", help="only when the workspace holds no dataset yet"
    )
    _db_arg(p)
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("datasets", help="list the datasets in the workspace")
    _db_arg(p)
    p.set_defaults(func=_cmd_datasets)

    p = sub.add_parser(
        "inject", help="copy a dataset with injected faults and their ground truth (a test bed)"
    )
    p.add_argument("--dataset", required=True, help="dataset name or id")
    p.add_argument("--faults", type=int, default=6, help="faults per asset")
    p.add_argument("--kinds", nargs="+", default=None, help="fault kinds (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", default=None, help="name of the copy")
    _db_arg(p)
    p.set_defaults(func=_cmd_inject)

    p = sub.add_parser("score", help="fit on TRAIN.csv, score DATA.csv, write OUT.csv")
    p.add_argument("--train", type=Path, required=True)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--detector", default="auto")
    p.add_argument("--threshold-quantile", type=float, default=None)
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a detector parameter, e.g. --param window=16 (repeat for more)",
    )
    p.set_defaults(func=_cmd_score)

    p = sub.add_parser("retrain", help="retrain a dataset's model from its labels (new version)")
    p.add_argument("--dataset", required=True, help="dataset name or id")
    p.add_argument("--budget-per-day", type=float, default=None, help="at most N alarms a day")
    p.add_argument("--no-semi", action="store_true", help="no semi-supervised classifier")
    p.add_argument("--promote", action="store_true", help="promote when it beats the active one")
    p.add_argument(
        "--learn-false-alarms", action="store_true", help="train on false alarms as normal data"
    )
    p.add_argument("--analyst", default="cli")
    _db_arg(p)
    p.set_defaults(func=_cmd_retrain)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CoreError as exc:
        return _user_error(exc)
    except Exception as exc:
        from core import store  # a write outside a transaction hit a full disk, a damaged file

        workspace = getattr(args, "db", None) or store.default_workspace_path()
        refused = store.duckdb_failure(exc, workspace)
        if refused is None:
            raise
        return _user_error(refused)


def _user_error(exc: CoreError) -> int:
    message = " ".join(str(exc).split())
    print(f"error: {message}", file=sys.stderr)
    return EXIT_USER_ERROR
