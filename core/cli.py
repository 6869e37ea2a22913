"""Command line: `python -m core {ingest,append,demo,datasets,inject,twin,score,export-model,retrain,report}`.

Every user error is one line on stderr and exit code 2; nothing half-written stays behind.
Only ingest and demo create a workspace: the other commands refuse a --db file that is missing.
`twin --report` exits 1 when the twin fails a check of its fidelity and privacy report.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from core.errors import CoreError
from core.wording import counted

EXIT_USER_ERROR = 2
EXIT_CHECK_FAILED = 1


def _db_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db", type=Path, default=None, help="workspace DuckDB file (default: $VIGIL_DB or data/)"
    )


def _dataset_key(text: str) -> int | str:
    """--dataset takes a name or an id."""
    return int(text) if text.isdigit() else text


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

    con = store.open_workspace(args.db, create=False)
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
    from core.errors import ConfigError

    if args.model is not None:
        if args.train is not None or args.save_model is not None:
            raise ConfigError(
                "--model scores with a saved model: leave out --train and --save-model."
            )
        if args.data is None or args.out is None:
            raise ConfigError("--model needs --data (a file, folder or glob) and --out.")
        return _score_with_model(args)
    if args.workers is not None or args.scheduler is not None:
        raise ConfigError("--workers and --scheduler score with a saved model: add --model FILE.")
    if args.train is None:
        raise ConfigError(
            "Give --train TRAIN.csv to fit a model, or --model FILE to use a saved one."
        )
    from core.detect import score_files
    from core.detect.detectors.registry import params_from_text

    summary = score_files(
        args.train,
        args.data,
        args.out,
        detector=args.detector,
        threshold_quantile=args.threshold_quantile,
        params=params_from_text(args.detector, args.param),
        save_model=args.save_model,
    )
    print(summary, file=sys.stderr)
    return 0


def _score_with_model(args: argparse.Namespace) -> int:
    from core.detect.fleet import score_with_model
    from core.errors import DataError
    from core.learn.model_files import load_any

    path = args.model
    if not path.is_file():
        raise DataError(f"The model file {str(path)!r} does not exist.")
    model = load_any(path.read_bytes())
    summary = score_with_model(
        model, args.data, args.out, workers=args.workers, scheduler=args.scheduler
    )
    print(summary, file=sys.stderr)
    return 0


def _cmd_export_model(args: argparse.Namespace) -> int:
    from core import store
    from core.detect.scoring import write_bytes_atomic
    from core.learn.versions import export_model

    con = store.open_workspace(args.db, create=False)
    try:
        info = store.get_dataset(con, int(args.dataset) if args.dataset.isdigit() else args.dataset)
        data, what = export_model(con, info.id, args.version)
    finally:
        con.close()
    write_bytes_atomic(data, args.out)
    print(f"Wrote {what} of {info.name!r} to {args.out} ({len(data):,} bytes)", file=sys.stderr)
    return 0


def _cmd_retrain(args: argparse.Namespace) -> int:
    from core import store
    from core.learn import RetrainConfig, promote, retrain

    con = store.open_workspace(args.db, create=False)
    try:
        info = store.get_dataset(con, _dataset_key(args.dataset))
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
            f"{counted(len(v.label_ids), 'label')}, classifier {'yes' if v.semi_supervised else 'no'}; "
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
    from core.synth import inject_into_dataset, transplant_confirmed

    con = store.open_workspace(args.db, create=False)
    try:
        info = store.get_dataset(con, _dataset_key(args.dataset))
        if args.transplant:
            copy = transplant_confirmed(
                con, info.id, args.transplant_kind, args.target, args.seed, args.name
            )
        else:
            copy = inject_into_dataset(con, info.id, args.faults, args.kinds, args.seed, args.name)
    finally:
        con.close()
    print(f"Test copy {copy.name!r} (dataset {copy.id}): {copy.quality.notes[-1]}")
    return 0


def _cmd_append(args: argparse.Namespace) -> int:
    from core import store
    from core.learn import append_batch, describe_batch

    con = store.open_workspace(args.db, create=False)
    try:
        done = append_batch(con, store.get_dataset(con, _dataset_key(args.dataset)).id, args.file)
    finally:
        con.close()
    first, *rest = describe_batch(done)
    print(first)
    for line in [*rest, *done.warnings]:
        print(f"warning: {line}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from core import store
    from core.share import build_report, report_bytes, report_format, write_report

    fmt = report_format(args.out)  # a wrong name or folder fails before any work
    con = store.open_workspace(args.db, create=False)
    try:
        info = store.get_dataset(con, _dataset_key(args.dataset))
        report = build_report(con, info, generated_by=args.analyst, top_events=args.events)
        content = report_bytes(report, fmt)
    finally:
        con.close()
    write_report(args.out, content)
    print(
        f"Report on {info.name!r} ({fmt.upper()}, {counted(len(report.events), 'event')} explained, "
        f"{len(content):,} bytes) written to {args.out}"
    )
    return 0


def _cmd_twin(args: argparse.Namespace) -> int:
    from core import store
    from core.errors import ConfigError
    from core.synth.twin import (
        check_twin_path,
        store_twin,
        twin_of_dataset,
        twin_report,
        write_twin,
    )

    if args.out is None and not args.store:
        raise ConfigError("Say where the twin goes: --out FILE.parquet, --store, or both.")
    if args.out is not None:
        check_twin_path(args.out)
    con = store.open_workspace(args.db, create=False)
    try:
        info = store.get_dataset(con, int(args.dataset) if args.dataset.isdigit() else args.dataset)
        twin = twin_of_dataset(con, info.id, args.seed, args.with_faults)
        report = twin_report(twin) if args.report else None
        if args.out is not None:
            write_twin(twin, args.out)
            print(f"Twin of {info.name!r}: {len(twin.readings):,} rows written to {args.out}")
        if args.store:
            copy = store_twin(con, twin, args.name)
            print(f"Twin {copy.name!r} stored as dataset {copy.id}")
    finally:
        con.close()
    if report is None:
        return 0
    for row in report.table().itertuples():
        mark = "pass" if row.passed else "FAIL"
        print(f"{mark}\t{row.check}\t{row.value:.4g} (limit {row.limit:g})")
    return 0 if report.passed else EXIT_CHECK_FAILED


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

    p = sub.add_parser(
        "append", help="append newer readings to a dataset, scored by its model in use"
    )
    p.add_argument("file", type=Path)
    p.add_argument("--dataset", required=True, help="dataset name or id")
    _db_arg(p)
    p.set_defaults(func=_cmd_append)

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
    p.add_argument(
        "--transplant",
        action="store_true",
        help="transplant the shapes of confirmed events instead of textbook faults",
    )
    p.add_argument("--transplant-kind", default=None, help="only confirmed events of this kind")
    p.add_argument("--target", default=None, help="asset to transplant into (default: the same)")
    _db_arg(p)
    p.set_defaults(func=_cmd_inject)

    p = sub.add_parser(
        "twin", help="a synthetic twin of a dataset: same sensors, modes and stops, no real values"
    )
    p.add_argument("--dataset", required=True, help="dataset name or id")
    p.add_argument("--out", type=Path, default=None, help="Parquet file to write the twin to")
    p.add_argument("--store", action="store_true", help="also store the twin in the workspace")
    p.add_argument("--name", default=None, help="name of the stored twin")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--with-faults", action="store_true", help="carry the source's injected faults along"
    )
    p.add_argument(
        "--report",
        action="store_true",
        help="print the fidelity and privacy report; exit 1 when a check fails",
    )
    _db_arg(p)
    p.set_defaults(func=_cmd_twin)

    p = sub.add_parser(
        "score",
        help="fit on TRAIN.csv and score DATA.csv (or save the model), or score with a saved model",
    )
    p.add_argument("--train", type=Path, default=None, help="fit a new model on this CSV")
    p.add_argument("--model", type=Path, default=None, help="score with this saved model file")
    p.add_argument(
        "--data", default=None, help="CSV or Parquet file; with --model also a folder or glob"
    )
    p.add_argument("--out", type=Path, default=None, help="output file (a folder for many files)")
    p.add_argument("--save-model", type=Path, default=None, help="save the fitted model here")
    p.add_argument("--workers", type=int, default=None, help="score on a local Dask cluster")
    p.add_argument("--scheduler", default=None, help="score on the Dask cluster at ADDRESS")
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

    p = sub.add_parser("export-model", help="write a dataset's model in use (or version N)")
    p.add_argument("--dataset", required=True, help="dataset name or id")
    p.add_argument("--version", type=int, default=None, help="this version instead")
    p.add_argument("--out", type=Path, required=True, help="the model file to write (.skops)")
    _db_arg(p)
    p.set_defaults(func=_cmd_export_model)

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

    p = sub.add_parser(
        "report", help="write the stakeholder report of a dataset as PDF or HTML (by --out)"
    )
    p.add_argument("--dataset", required=True, help="dataset name or id")
    p.add_argument("--out", type=Path, required=True, help="report file: NAME.pdf or NAME.html")
    p.add_argument(
        "--events", type=int, default=3, help="most severe events to explain (default: 3)"
    )
    p.add_argument("--analyst", default="cli", help="who the report says generated it")
    _db_arg(p)
    p.set_defaults(func=_cmd_report)
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
