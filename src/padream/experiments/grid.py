"""The study as code: a grid of (dataset, condition, seed) cells, each a run folder derived from its cell.

A cell is finished when its folder holds ``done.json`` for the same training budget; an interrupted
cell resumes from its newest checkpoint. Running a sweep twice therefore recomputes nothing, and a
sweep killed at any moment continues where it stopped. Engines (sequential here, Ray in
padream.experiments.ray_engine) only decide *where* ``run_cell`` executes.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from padream.checkpoint import atomic_write_text
from padream.config import CONDITIONS, DATASETS, ConfigError, closest, make_config

DONE_FILE = "done.json"
UNTRAINED = "untrained"


@dataclass(frozen=True)
class Cell:
    dataset: str
    condition: str
    seed: int

    def run_dir(self, runs_dir: str | Path) -> Path:
        return Path(runs_dir) / self.dataset / self.condition / f"seed{self.seed}"

    def __str__(self) -> str:
        return f"{self.dataset}/{self.condition}/seed{self.seed}"


def parse_list(text: str, kind: str, valid: Iterable[str] | None = None) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise ConfigError(f"--{kind} is empty")
    if valid is not None:
        valid = list(valid)
        for item in items:
            if item not in valid:
                raise ConfigError(f"unknown {kind[:-1]} '{item}'{closest(item, valid)}; choose from {', '.join(valid)}")
    return items


def parse_seeds(text: str) -> list[int]:
    """'0,1,2' or '0-3' (inclusive), or a mix."""
    seeds: list[int] = []
    for item in parse_list(text, "seeds"):
        match = re.fullmatch(r"(\d+)-(\d+)", item)
        try:
            seeds.extend(range(int(match[1]), int(match[2]) + 1) if match else [int(item)])
        except ValueError:
            raise ConfigError(f"seeds must be integers or ranges like 0-3, got '{item}'") from None
    return sorted(set(seeds))


def make_grid(datasets: Iterable[str], conditions: Iterable[str], seeds: Iterable[int]) -> list[Cell]:
    """Cells in a fixed order (dataset, condition, seed), numbered by position."""
    for name in datasets:
        if name not in DATASETS:
            raise ConfigError(f"unknown dataset '{name}'{closest(name, DATASETS)}")
    for name in conditions:
        if name not in CONDITIONS and name != UNTRAINED:
            raise ConfigError(f"unknown condition '{name}'{closest(name, CONDITIONS)}")
    return [Cell(d, c, s) for d in datasets for c in conditions for s in seeds]


def budget(train_options: dict[str, Any]) -> dict[str, Any]:
    return {"epochs": train_options.get("epochs", 50), "max_steps": train_options.get("max_steps")}


def _marker(cell: Cell, runs_dir: str | Path) -> dict[str, Any] | None:
    try:
        return json.loads((cell.run_dir(runs_dir) / DONE_FILE).read_text())
    except (OSError, ValueError):
        return None


def is_done(cell: Cell, runs_dir: str | Path, train_options: dict[str, Any], evaluate: bool = False) -> bool:
    """Trained to this budget (and evaluated, when asked)."""
    marker = _marker(cell, runs_dir)
    if marker is None or marker.get("budget") != budget(train_options):
        return False
    return bool(marker.get("eval")) or not evaluate


def run_cell(cell: Cell, runs_dir: str | Path, train_options: dict[str, Any], data_root: str | None = None,
             evaluate: bool = True, data=None, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train (or resume) one cell, evaluate it, mark it done; returns its summary. Idempotent."""
    from padream.train import Trainer

    run_dir = cell.run_dir(runs_dir)
    if is_done(cell, runs_dir, train_options, evaluate):
        return {**_marker(cell, runs_dir), "status": "skipped"}
    start = time.perf_counter()
    summary: dict[str, Any] = {"cell": str(cell), "budget": budget(train_options)}
    if is_done(cell, runs_dir, train_options):  # trained earlier without evaluation
        summary = _marker(cell, runs_dir)
    elif cell.condition == UNTRAINED:
        run_dir.mkdir(parents=True, exist_ok=True)
    else:
        config = make_config(cell.condition, dataset=cell.dataset, seed=cell.seed, **train_options)
        history = Trainer(config, run_dir, data_root=data_root, resume=True, data=data, progress=False,
                          log=log).run()
        if history:
            summary["last_epoch"] = {k: v for k, v in history[-1].items() if isinstance(v, (int, float))}
    if evaluate:
        summary["eval"] = _evaluate(cell, run_dir, data_root, data, train_options)
    # Time spent on the cell in all sessions (training first, evaluation possibly in a later sweep).
    summary["seconds"] = round(summary.get("seconds", 0.0) + time.perf_counter() - start, 1)
    atomic_write_text(run_dir / DONE_FILE, json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return {**summary, "status": "done"}


def _evaluate(cell: Cell, run_dir: Path, data_root, data, train_options) -> dict[str, Any]:
    from padream.eval import suite

    device = train_options.get("device", "auto")
    if cell.condition == UNTRAINED:
        results = suite.evaluate_untrained_dir(
            run_dir, cell.dataset, cell.seed, data_root=data_root, device=device, data=data,
            latent_dim=train_options.get("latent_dim", 256), base_channels=train_options.get("base_channels", 64))
    else:
        results = suite.evaluate_run_dir(run_dir, data_root=data_root, device=device, data=data)
    # done.json keeps the headline numbers only; the full results (PCA points, curves) stay in eval/*.json.
    return {key: value for result in results.values() for key, value in result.items()
            if isinstance(value, (int, float)) and not key.startswith("seconds/")}


def run_sequential(cells: list[Cell], runs_dir: str | Path, train_options: dict[str, Any],
                   data_root: str | None = None, evaluate: bool = True,
                   log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """One cell after another in this process, each dataset loaded once."""
    from padream.data import load_dataset

    cache: dict[str, Any] = {}
    results = []
    for number, cell in enumerate(cells, 1):
        prefix = f"[{number}/{len(cells)}] {cell}"
        if is_done(cell, runs_dir, train_options, evaluate):
            log(f"{prefix}: already done, skipped")
            results.append({"cell": str(cell), "status": "skipped"})
            continue
        if cell.dataset not in cache:
            cache[cell.dataset] = load_dataset(cell.dataset, data_root, train_options.get("download", False))
        try:
            result = run_cell(cell, runs_dir, _without_download(train_options), data_root, evaluate,
                              data=cache[cell.dataset])
        except Exception as error:  # one failed cell must not stop the others
            log(f"{prefix}: FAILED: {type(error).__name__}: {error}")
            results.append({"cell": str(cell), "status": "failed", "error": f"{type(error).__name__}: {error}"})
            continue
        acc = result.get("last_epoch", {}).get("probe/test_acc")
        log(f"{prefix}: done in {result['seconds']:.0f}s" + (f", read-out test acc {100 * acc:.2f}%" if acc else ""))
        results.append(result)
    return results


def _without_download(options: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in options.items() if k != "download"}


def summarize(results: list[dict[str, Any]]) -> str:
    counts = {status: sum(r["status"] == status for r in results) for status in ("done", "skipped", "failed")}
    return f"sweep: {counts['done']} done, {counts['skipped']} skipped (already done), {counts['failed']} failed"
