"""Command-line interface: ``padream train | sweep | eval | report``.

Every expected failure (bad option, missing data, unusable checkpoint, ...) ends in one line on
stderr and exit status 2; set PADREAM_DEBUG=1 to see the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from padream.config import (CONDITIONS, DATASETS, MAIN_CONDITIONS, PRECISIONS, ConfigError, TrainConfig, closest,
                             make_config)

EXIT_USAGE = 2
ENGINES = ("sequential", "ray")


class Parser(argparse.ArgumentParser):
    """argparse that rejects abbreviated options and suggests the closest valid option for a mistyped one."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)  # '--epoch' is a typo to report, not '--epochs'
        super().__init__(*args, **kwargs)

    def _all_option_strings(self) -> list[str]:
        # A subcommand's unknown options are reported by the top-level parser, so include its subparsers'.
        options = []
        for action in self._actions:
            options += action.option_strings
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    options += [s for s in sub._all_option_strings() if s not in options]
        return options

    def error(self, message: str):
        if message.startswith("unrecognized arguments:"):
            options = self._all_option_strings()
            for word in message.split(":", 1)[1].split():
                if word.startswith("-"):
                    message += closest(word.split("=")[0], options)
                    break
        self.exit(EXIT_USAGE, f"padream: error: {message} (see '{self.prog} --help')\n")


def _number(kind: type, minimum: float, inclusive: bool, noun: str, bound: str):
    """An argparse type: `kind` (int or float) at least `minimum` (or above it, when not inclusive)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {noun}, got '{text}'") from None
        if not (value >= minimum if inclusive else value > minimum):  # also rejects NaN
            raise argparse.ArgumentTypeError(f"must be {bound}, got {text}")
        return value

    return parse


_positive_int = _number(int, 1, True, "a positive integer", "at least 1")
_positive_float = _number(float, 0, False, "a positive number", "positive")
_non_negative_int = _number(int, 0, True, "a whole number", "0 or more")
_non_negative_float = _number(float, 0, True, "a number", "0 or more")


def _choice(options):
    def parse(text: str) -> str:
        if text not in options:
            raise argparse.ArgumentTypeError(f"invalid choice '{text}'{closest(text, options)}; "
                                             f"choose from {', '.join(options)}")
        return text
    return parse


def add_training_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by `train` and `sweep`: everything that defines how one run trains."""
    parser.add_argument("--epochs", type=_positive_int, default=50, help="training epochs (default 50)")
    parser.add_argument("--data-root", help="folder with NAME/{train,test}.npz or torchvision files "
                                            "(default: $PADREAM_DATA, else ./data)")
    parser.add_argument("--download", action="store_true", help="download through torchvision if missing")
    parser.add_argument("--batch-size", type=_positive_int, default=64)
    parser.add_argument("--lr", type=_positive_float, default=2e-4, help="Adam learning rate")
    parser.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:N")
    parser.add_argument("--precision", type=_choice(PRECISIONS), default="auto",
                        help="auto = bf16 where the hardware runs it fast, else fp32")
    parser.add_argument("--threads", type=_positive_int, help="CPU threads for torch (default: torch's)")
    parser.add_argument("--max-steps", type=_positive_int, help="stop after this many cycles (smoke runs)")
    parser.add_argument("--no-probe", action="store_true", help="skip the per-epoch linear read-out")
    parser.add_argument("--probe-epochs", type=_positive_int, default=20, help="read-out SGD epochs")
    parser.add_argument("--latent-dim", type=_positive_int, default=256)
    parser.add_argument("--base-channels", type=_positive_int, default=64)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def training_options(args: argparse.Namespace) -> dict:
    """The config overrides that add_training_options defines (everything but dataset/condition/seed)."""
    options = dict(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, device=args.device,
                   precision=args.precision, threads=args.threads, max_steps=args.max_steps,
                   probe_every_epoch=not args.no_probe, probe_epochs=args.probe_epochs,
                   latent_dim=args.latent_dim, base_channels=args.base_channels)
    if args.download:
        options["download"] = True
    return options


def config_from_args(args: argparse.Namespace, condition: str, dataset: str, seed: int) -> TrainConfig:
    options = training_options(args)
    options.pop("download", None)
    return make_config(condition, dataset=dataset, seed=seed, **options)


def build_parser() -> Parser:
    parser = Parser(prog="padream", description="Perturbed and adversarial dreaming (PAD).")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    train = commands.add_parser("train", help="train one run")
    train.add_argument("--dataset", type=_choice(DATASETS), default="cifar10")
    train.add_argument("--condition", type=_choice(tuple(CONDITIONS)), default="pad")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--run-dir", help="output folder (default runs/DATASET/CONDITION/seedS)")
    train.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    add_training_options(train)

    sweep = commands.add_parser("sweep", help="run a grid of datasets x conditions x seeds, resumably")
    sweep.add_argument("--datasets", default="cifar10", help="comma-separated (default cifar10)")
    sweep.add_argument("--conditions", default=",".join(MAIN_CONDITIONS),
                       help=f"comma-separated, from: {', '.join(CONDITIONS)}, untrained (default: the paper's five)")
    sweep.add_argument("--seeds", default="0", help="comma-separated or ranges, e.g. 0-3 (default 0)")
    sweep.add_argument("--runs-dir", default="runs", help="root of the run folders DIR/DATASET/CONDITION/seedS")
    sweep.add_argument("--no-eval", action="store_true", help="train only; skip the evaluation suite")
    sweep.add_argument("--engine", type=_choice(ENGINES), default="sequential",
                       help="sequential (default: one run after another here) or ray (one Ray task per run)")
    sweep.add_argument("--address", help="ray: join this cluster ('auto': the one `ray start` made here); "
                                         "default: start a local Ray instance")
    sweep.add_argument("--cpus-per-run", type=_positive_int, help="ray: CPUs (and torch threads) per run (default 1)")
    sweep.add_argument("--gpus-per-run", type=_non_negative_float,
                       help="ray: GPUs per run, fractions allowed (default 0: train on CPU)")
    sweep.add_argument("--max-retries", type=_non_negative_int,
                       help="ray: restarts of a run whose worker or node dies; it resumes from its checkpoint (default 3)")
    add_training_options(sweep)

    evaluate = commands.add_parser("eval", help="linear read-out of a saved run (or of an untrained encoder)")
    evaluate.add_argument("run_dir", nargs="?", help="a run folder written by `padream train`")
    evaluate.add_argument("--untrained", action="store_true", help="read out a freshly initialised encoder")
    evaluate.add_argument("--dataset", type=_choice(DATASETS), default=None)
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--data-root")
    evaluate.add_argument("--device", default="auto")
    evaluate.add_argument("--precision", type=_choice(PRECISIONS), default=None)
    evaluate.add_argument("--out", help="JSON file for the result (default RUN_DIR/eval.json)")

    suite = commands.add_parser("evaluate", help="every evaluation of a saved run (read-outs, occlusion, latent "
                                                 "distances, PCA, dreams, FID) into RUN_DIR/eval/NAME.json")
    suite.add_argument("run_dir", help="a run folder written by `padream train`")
    suite.add_argument("--data-root", help="folder with NAME/{train,test}.npz or torchvision files "
                                           "(default: $PADREAM_DATA, else ./data)")
    suite.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:N")
    suite.add_argument("--fid-weights", help="pt_inception-2015-12-05-6726825d.pth for FID (default: "
                                             "$PADREAM_FID_WEIGHTS; without either, FID is skipped)")
    suite.add_argument("--only", help="comma-separated subset of: linear_probe, converged_probe, occlusion, "
                                      "distances, pca, dreams, fid")
    suite.add_argument("--overwrite", action="store_true",
                       help="recompute results already in RUN_DIR/eval/ for the same checkpoint")

    report = commands.add_parser("report", help="aggregate a study's runs into summary.json, the paper's figures "
                                                "and report.md/report.html")
    report.add_argument("runs_dir", help="root of the run folders DIR/DATASET/CONDITION/seedS")
    report.add_argument("--out", default="reports", help="output folder (default ./reports)")
    return parser


def cmd_train(args: argparse.Namespace) -> int:
    from padream.train import Trainer, format_row

    config = config_from_args(args, args.condition, args.dataset, args.seed)
    run_dir = args.run_dir or os.path.join("runs", args.dataset, args.condition, f"seed{args.seed}")
    history = Trainer(config, run_dir, data_root=args.data_root, resume=args.resume, download=args.download,
                      progress=not args.no_progress).run()
    if history:
        print(format_row(history[-1]))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from padream.evaluate import evaluate_run, evaluate_untrained

    if args.untrained:
        if args.run_dir:
            raise ConfigError("give either a run folder or --untrained, not both")
        result = evaluate_untrained(args.dataset or "cifar10", args.seed, args.data_root, args.device,
                                    args.precision or "auto")
        out = Path(args.out) if args.out else None
    else:
        if not args.run_dir:
            raise ConfigError("give a run folder (padream eval RUN_DIR) or --untrained")
        result = evaluate_run(args.run_dir, args.data_root, args.device, args.precision)
        out = Path(args.out) if args.out else Path(args.run_dir) / "eval.json"
    text = json.dumps(result, indent=2, sort_keys=True)
    if out is not None:
        from padream.checkpoint import atomic_write_text
        atomic_write_text(out, text + "\n")
    print(text)
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from padream.experiments.grid import make_grid, parse_list, parse_seeds, run_sequential, summarize

    cells = make_grid(parse_list(args.datasets, "datasets", DATASETS),
                      parse_list(args.conditions, "conditions", (*CONDITIONS, "untrained")), parse_seeds(args.seeds))
    options = training_options(args)
    ray_only = {"--address": args.address, "--cpus-per-run": args.cpus_per_run, "--gpus-per-run": args.gpus_per_run,
                "--max-retries": args.max_retries}
    given = [name for name, value in ray_only.items() if value is not None]
    if given and args.engine != "ray":
        raise ConfigError(f"{', '.join(given)} only appl{'ies' if len(given) == 1 else 'y'} with --engine ray")
    print(f"sweep: {len(cells)} runs in {args.runs_dir}", file=sys.stderr)

    def log(line: str) -> None:
        print(line, flush=True)

    if args.engine == "ray":
        from padream.experiments.ray_engine import run_ray

        results = run_ray(cells, args.runs_dir, options, args.data_root, evaluate=not args.no_eval, log=log,
                          address=args.address, cpus_per_run=args.cpus_per_run or 1,
                          gpus_per_run=args.gpus_per_run or 0.0,
                          max_retries=3 if args.max_retries is None else args.max_retries)
    else:
        results = run_sequential(cells, args.runs_dir, options, args.data_root, evaluate=not args.no_eval, log=log)
    print(summarize(results))
    return 1 if any(r["status"] == "failed" for r in results) else 0


def cmd_report(args: argparse.Namespace) -> int:
    from padream.report import ReportError, build_report

    try:
        result = build_report(args.runs_dir, args.out)
    except ReportError as error:
        if os.environ.get("PADREAM_DEBUG"):
            raise
        print(f"padream: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    drawn = sum(1 for figure in result["figures"] if figure["file"])
    print(f"report: {result['runs']} runs, {drawn} of {len(result['figures'])} figures drawn; {result['html']}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from padream.eval.suite import evaluate_run_dir, summary_lines

    which = None
    if args.only is not None:
        which = [name.strip() for name in args.only.split(",") if name.strip()]
        if not which:
            raise ConfigError("--only is empty")
    results = evaluate_run_dir(args.run_dir, data_root=args.data_root, device=args.device,
                               fid_weights=args.fid_weights, which=which, overwrite=args.overwrite)
    for line in summary_lines(results):
        print(line)
    if "fid" not in results and (which is None or "fid" in which):
        print("fid: skipped (no Inception weights: pass --fid-weights PATH or set PADREAM_FID_WEIGHTS)")
    return 0


COMMANDS = {"train": cmd_train, "eval": cmd_eval, "sweep": cmd_sweep, "report": cmd_report,
            "evaluate": cmd_evaluate}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from padream.checkpoint import CheckpointError
    from padream.data import DataError
    from padream.train import NonFiniteLossError, RunDirError

    expected = (ConfigError, DataError, CheckpointError, RunDirError, NonFiniteLossError, OSError)
    try:
        return COMMANDS[args.command](args)
    except expected as error:
        if os.environ.get("PADREAM_DEBUG"):
            raise
        print(f"padream: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        again = "run the same command again" if args.command == "sweep" else "add --resume"
        print(f"padream: interrupted; to continue, {again}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
