"""The command line: condense, anchors, predict, evaluate, run. Each mirrors a Python API call."""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

from disco_ray import __version__
from disco_ray.design import DESIGN_HELP, AnchorDesign
from disco_ray.methods import DEFAULT_METHOD, METHODS

log = logging.getLogger("disco_ray")


def _int_list(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")


def _str_list(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def _add_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, type=Path,
                        help="model outputs: .npz, .parquet (file or folder), or lm-eval "
                             "--log_samples output")
    parser.add_argument("--task", help="lm-eval logs: task name prefix to read (e.g. mmlu)")
    parser.add_argument("--metric", choices=["acc", "acc_norm"], default="acc",
                        help="lm-eval logs: which per-sample metric is 'correct'")


def _read(args: argparse.Namespace):
    from disco_ray.io import read_outputs

    return read_outputs(args.data, task=args.task, metric=args.metric)


def _method_list(text: str) -> list[str]:
    names = _str_list(text)
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown method {unknown[0]!r}; known: "
                                         f"{', '.join(METHODS)}")
    return names


def _designs(text: str) -> list[AnchorDesign]:
    try:
        return [AnchorDesign.parse(name) for name in _str_list(text)]
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err))


def _positive_int(text: str, low: int = 1) -> int:
    if not text.isdigit() or int(text) < low:
        raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}")
    return int(text)


def _seed(text: str) -> int:
    return _positive_int(text, low=0)


def _add_condense(sub, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("condense", parents=[common],
                       help="reference outputs -> condensed benchmark directory")
    _add_data_arguments(p)
    p.add_argument("--k", type=_positive_int, default=100, help="number of anchors (default 100)")
    p.add_argument("--method", choices=METHODS, default=DEFAULT_METHOD,
                   help="method preset (disco_ray.methods; disco_frontier for targets expected "
                        "beyond every reference; default disco)")
    p.add_argument("--seed", type=_seed, default=0,
                   help="seeds anchor draws, CV and metamodels (default 0)")
    p.add_argument("--designs", type=_designs, default=[],
                   help=f"comma-separated anchor designs that replace the method's: {DESIGN_HELP}"
                        " (several are chosen among by CV on the references)")
    p.add_argument("--output", required=True, type=Path,
                   help="directory to write (new, empty, or an earlier benchmark)")


ANCHOR_FORMATS = ("ids", "lm-eval-samples", "lm-eval-tasks")


def _add_anchors(sub, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("anchors", parents=[common],
                       help="list a condensed benchmark's anchors (ids, or lm-eval's --samples)")
    p.add_argument("--benchmark", required=True, type=Path, help="condensed benchmark directory")
    p.add_argument("--format", choices=ANCHOR_FORMATS, default="ids",
                   help="ids: one sample id per line (default); lm-eval-samples: the JSON that "
                        "lm_eval --samples reads ({task: [doc_id, ...]}, sorted); lm-eval-tasks: "
                        "the tasks holding anchors, for lm_eval --tasks")
    p.add_argument("--output", type=Path, help="write to this file instead of standard output")


def _add_predict(sub, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("predict", parents=[common],
                       help="condensed benchmark + outputs on the anchors -> scores")
    _add_data_arguments(p)
    p.add_argument("--benchmark", required=True, type=Path, help="condensed benchmark directory")
    p.add_argument("--json", action="store_true", help="one JSON object per line")


def _add_evaluate(sub, common: argparse.ArgumentParser) -> None:
    from disco_ray.report.tables import EVALUATION_COLUMNS

    columns = "\n".join(f"  {header:<7} {meaning}" for header, meaning in EVALUATION_COLUMNS)
    p = sub.add_parser("evaluate", parents=[common], help="compare methods on held-out models",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Condense each method on the references of a split and "
                                   "predict its held-out models.",
                       epilog="The printed table's columns (--output and --json also hold "
                              "kendall, seeds and the coverage CI's bounds):\n" + columns)
    _add_data_arguments(p)
    p.add_argument("--anchors", type=_int_list, default=[10, 25, 50, 100],
                   help="comma-separated k values (default 10,25,50,100)")
    p.add_argument("--split", type=_str_list, default=["random"],
                   help="comma-separated: random (20%% of the models held out per seed; "
                        "leave-one-model-out below 100 models), top (the strongest 10%%), "
                        "chronological (the newest 10%%); default random")
    p.add_argument("--seeds", type=_positive_int, default=5,
                   help="repetitions per cell (default 5)")
    p.add_argument("--methods", type=_method_list, default=list(METHODS),
                   help="comma-separated method presets (default: all)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--per-seed", action="store_true", help="a row per seed, not the mean")
    p.add_argument("--output", type=Path, help="also write the table as CSV here")
    p.add_argument("--predictions", type=Path,
                   help="also write every held-out model's prediction and interval (Parquet)")
    p.add_argument("--plot", type=Path,
                   help="also draw MAE and interval coverage against k per method (PNG)")
    p.add_argument("--workers", type=_positive_int, default=1,
                   help="condense-and-predict runs (one per split, k, method and seed) at "
                        "once, as Ray tasks of one CPU: on a local Ray with this many CPUs, or "
                        "on the cluster of --address / $RAY_ADDRESS (default 1: one after "
                        "another in this process, no Ray)")
    p.add_argument("--address",
                   help="with --workers N: run them on this Ray cluster (`ray job submit` "
                        "sets $RAY_ADDRESS, which does the same)")


def _add_run(sub, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("run", parents=[common],
                       help="the whole pipeline from a YAML config (local Ray by default)")
    p.add_argument("config", nargs="?", type=Path, default=None,
                   help="YAML config (default: configs/demo.yaml, the embedded demo)")
    p.add_argument("--output", type=Path, help="output directory (overrides the config)")
    p.add_argument("--address", help="Ray address (default: a local Ray started in-process, or "
                                     "the cluster of `ray job submit`)")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true",
                        help="no progress bars or info logs (for CI)")
    parser = argparse.ArgumentParser(prog="disco-ray", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_condense, _add_anchors, _add_predict, _add_evaluate, _add_run):
        add(sub, common)
    return parser


def cmd_condense(args: argparse.Namespace) -> int:
    from disco_ray.io.atomic import check_replaceable
    from disco_ray.io.benchmark import DATA_FILES, MANIFEST, write_benchmark
    from disco_ray.methods import method_settings
    from disco_ray.search import condense

    check_replaceable(args.output, MANIFEST, DATA_FILES)   # before minutes of work, not after
    outputs = _read(args)
    bench = condense(outputs, method_settings(args.method, args.k, args.seed, args.designs))
    write_benchmark(bench, args.output)
    log.info("condensed %d samples to %s (method %s) -> %s", outputs.n_samples,
             bench.describe(), args.method, args.output)
    return 0


def anchors_text(anchor_ids: Sequence[str], fmt: str) -> str:
    """The anchors in one of ANCHOR_FORMATS."""
    if fmt == "ids":
        return "\n".join(anchor_ids) + "\n"
    from disco_ray.io import lm_eval_samples

    selection = lm_eval_samples(anchor_ids)
    return (json.dumps(selection) if fmt == "lm-eval-samples" else ",".join(selection)) + "\n"


def cmd_anchors(args: argparse.Namespace) -> int:
    from disco_ray.io import atomic_path
    from disco_ray.io.benchmark import read_benchmark

    text = anchors_text(read_benchmark(args.benchmark).anchor_ids, args.format)
    if args.output is None:
        sys.stdout.write(text)
    else:
        with atomic_path(args.output) as tmp:
            tmp.write_text(text)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from disco_ray.io.benchmark import read_benchmark
    from disco_ray.report.tables import model_rows, text_table, warning_lines

    predictions = read_benchmark(args.benchmark).predict(_read(args))
    if args.json:
        for p in predictions:
            print(json.dumps(asdict(p)))
    else:
        rows = model_rows([asdict(p) for p in predictions])
        print("\n".join(text_table(rows) + warning_lines(rows)))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from disco_ray.distributed.evaluation import cell_runner
    from disco_ray.distributed.session import address_from_env
    from disco_ray.evaluation import (check_plan, evaluation_table, held_out_predictions,
                                      per_seed_metrics)
    from disco_ray.io import atomic_path

    outputs = _read(args)
    plan = (outputs, args.methods, args.anchors, args.split, args.seeds)
    check_plan(*plan)   # before Ray starts: a typo costs no cluster connection
    address = args.address or (address_from_env() if args.workers > 1 else None)
    with cell_runner(address, args.workers, args.quiet) as runner:
        predictions = held_out_predictions(*plan, progress=not args.quiet, runner=runner)
    summary = evaluation_table(predictions)
    table = per_seed_metrics(predictions) if args.per_seed else summary
    if args.predictions:
        with atomic_path(args.predictions) as tmp:
            predictions.to_parquet(tmp, index=False)
    if args.output:
        with atomic_path(args.output) as tmp:
            table.to_csv(tmp, index=False)
    if args.plot:
        from disco_ray.report.plots import evaluation_plot

        with atomic_path(args.plot) as tmp:
            tmp.write_bytes(evaluation_plot(summary, args.data.name))
    if args.json:
        for row in table.astype(object).where(table.notna(), None).to_dict(orient="records"):
            print(json.dumps({"data": args.data.stem, **row}))   # NaN -> null: strict JSON
    else:
        from disco_ray.report.tables import evaluation_text

        print(evaluation_text(table))
    return 0


INTERRUPTED = 130   # the shell's code for a process ended by Ctrl-C


def cmd_run(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("ray") is None:   # before minutes of loading, not after
        raise RuntimeError("`disco-ray run` runs the models on Ray, which is not installed. "
                           "Fix: pip install 'disco-ray[ray]'")
    from disco_ray.pipeline import run_from_config

    try:
        result = run_from_config(args.config, output=args.output, address=args.address,
                                 quiet=args.quiet)
    except KeyboardInterrupt:
        print("disco-ray run: interrupted. Every model that finished is kept in the output "
              "directory (outputs/); run the same command again to resume from them.",
              file=sys.stderr)
        return INTERRUPTED
    if (result.output_dir / "predictions.json").exists():
        from disco_ray.report import summary_table

        print(summary_table(result.output_dir))
    return 1 if result.failed else 0


COMMANDS = {"condense": cmd_condense, "anchors": cmd_anchors, "predict": cmd_predict,
            "evaluate": cmd_evaluate, "run": cmd_run}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].endswith((".yaml", ".yml")):
        argv = ["run", *argv]
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return COMMANDS[args.command](args)
    except (ValueError, OSError, RuntimeError) as err:
        print(f"disco-ray {args.command}: error: {err}", file=sys.stderr)
        return 2
