"""Collect a study's run folders and aggregate them over seeds: the one step every figure and table reads.

Figures and the report read only what this module writes (summary.json), never checkpoints or run
folders, so a figure can be redrawn without the runs and every number in it can be traced to a run.

Statistics: mean over seeds and SEM = std(ddof=1) / sqrt(n). For a single seed the SEM (and std) is
None, not 0: one run says nothing about the spread, and a zero would read as certainty.
Every statistic carries the seeds and the epochs behind it, because a study in progress mixes budgets.
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import math
import re
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

import numpy as np
from scipy import stats

from padream.config import CONDITION_LABELS, CONDITIONS, DATASETS, MAIN_CONDITIONS
from padream.experiments.grid import DONE_FILE, UNTRAINED
from padream.train import CONFIG_FILE, METRICS_FILE

EVAL_DIR = "eval"
SUMMARY_FILE = "summary.json"
RUNS_CSV = "runs.csv"
SUMMARY_FORMAT = 1
SEM_DEFINITION = "std(ddof=1) / sqrt(n) over seeds; null when n = 1"

# Per-epoch curves: the read-out, every loss, the discriminator's mean outputs, and FID if a run logs it.
CURVE_PREFIXES = ("probe/", "loss/", "d/", "fid/")
READOUT = "probe/test_acc"
# Row and eval keys that describe where a number comes from rather than being a measurement.
ROW_BOOKKEEPING = frozenset({"epoch", "step", "partial"})
EVAL_BOOKKEEPING = frozenset({"epoch", "step", "seed"})
OCCLUSION_PROBABILITIES = "occlusion/probabilities"
PCA_PREFIX = "pca/"
SEED_FOLDER = re.compile(r"seed(\d+)")


class ReportError(RuntimeError):
    """A study folder that cannot be reported on (nothing in it, matplotlib missing, ...)."""


# ---------------------------------------------------------------------------------------------
# Statistics

def mean_sem(values: Iterable[float]) -> dict[str, Any]:
    """Mean, std(ddof=1), SEM and n of a non-empty sample; std and SEM are None for n = 1."""
    array = np.asarray(list(values), dtype=np.float64)
    if array.size == 0:
        raise ValueError("mean_sem needs at least one value")
    n = int(array.size)
    spread = n > 1
    return {"mean": float(array.mean()),
            "std": float(array.std(ddof=1)) if spread else None,
            "sem": float(stats.sem(array, ddof=1)) if spread else None,
            "n": n}


def _stat(values: list[float], seeds: list[int], epochs: list[int | None]) -> dict[str, Any]:
    return {**mean_sem(values), "values": [float(v) for v in values], "seeds": seeds, "epochs": epochs}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_number_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(_is_number(v) for v in value)


# ---------------------------------------------------------------------------------------------
# Reading one run folder

def find_run_dirs(runs_dir: Path) -> list[Path]:
    """Folders holding a config, metrics, done marker or eval folder, outside checkpoint/eval folders."""
    found: set[Path] = set()
    for marker in (CONFIG_FILE, METRICS_FILE, DONE_FILE):
        found.update(path.parent for path in runs_dir.rglob(marker) if path.is_file())
    found.update(path.parent for path in runs_dir.rglob(EVAL_DIR) if path.is_dir())
    inside = {EVAL_DIR, "checkpoints"}
    return sorted(p for p in found if not inside & set(p.relative_to(runs_dir).parts))


def flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as 'outer/inner' keys, so nested and flat eval files merge the same way."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "/"))
        else:
            flat[name] = value
    return flat


def read_eval(run_dir: Path) -> tuple[dict[str, Any], list[str], list[str]]:
    """Merge RUN_DIR/eval/*.json (in name order; a later file wins a conflict, which is reported).

    Keys of eval/pca.json without a '/' get the 'pca/' prefix, so PCA data is found either way."""
    merged: dict[str, Any] = {}
    files: list[str] = []
    warnings: list[str] = []
    for path in sorted((run_dir / EVAL_DIR).glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            warnings.append(f"{path.name}: unreadable ({error})")
            continue
        if not isinstance(data, dict):
            warnings.append(f"{path.name}: not a JSON object, ignored")
            continue
        flat = flatten(data)
        if path.stem == "pca":
            flat = {(k if "/" in k else PCA_PREFIX + k): v for k, v in flat.items()}
        for key, value in flat.items():
            if key in merged and merged[key] != value and key not in EVAL_BOOKKEEPING:
                warnings.append(f"eval key {key} differs between files; {path.name} wins")
            merged[key] = value
        files.append(path.name)
    return merged, files, warnings


def read_history(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    rows, warnings = [], []
    if not path.exists():
        return rows, warnings
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            warnings.append(f"{path.name} line {number} is not JSON, ignored")
            continue
        if isinstance(row, dict) and _is_number(row.get("epoch")):
            rows.append(row)
    return rows, warnings


def final_row(history: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, bool]:
    """The last complete epoch's row; the last partial row only when no epoch completed (flagged True)."""
    complete = [row for row in history if not row.get("partial")]
    if complete:
        return complete[-1], False
    return (history[-1], True) if history else (None, False)


def curve_rows(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Complete epochs, or the partial rows when no epoch completed (the same rule as final_row)."""
    complete = [row for row in history if not row.get("partial")]
    return complete or [row for row in history if row.get("partial")]


def identify(run_dir: Path, runs_dir: Path, config: dict[str, Any] | None) -> tuple[tuple | None, list[str]]:
    """(dataset, condition, seed) from config.json, else from the folder layout DATASET/CONDITION/seedK."""
    parts = run_dir.relative_to(runs_dir).parts
    from_layout = None
    if len(parts) >= 3 and SEED_FOLDER.fullmatch(parts[-1]):
        from_layout = (parts[-3], parts[-2], int(SEED_FOLDER.fullmatch(parts[-1])[1]))
    from_config = None
    if config and all(k in config for k in ("dataset", "condition", "seed")):
        from_config = (config["dataset"], config["condition"], int(config["seed"]))
    if from_config and from_layout and from_config != from_layout:
        return from_config, [f"folder says {'/'.join(map(str, from_layout))} but config.json says "
                             f"{'/'.join(map(str, from_config))}; config.json is used"]
    return from_config or from_layout, []


def read_run(run_dir: Path, runs_dir: Path) -> dict[str, Any] | None:
    """One run folder as a record; None (with nothing to report) for a folder that is not a run."""
    warnings: list[str] = []
    saved = None
    if (run_dir / CONFIG_FILE).exists():
        try:
            saved = json.loads((run_dir / CONFIG_FILE).read_text())
        except (OSError, ValueError) as error:
            warnings.append(f"{CONFIG_FILE} unreadable ({error})")
    config = saved.get("config") if isinstance(saved, dict) else None
    identity, problems = identify(run_dir, runs_dir, config)
    if identity is None:
        return None
    warnings += problems
    history, problems = read_history(run_dir / METRICS_FILE)
    warnings += problems
    final, final_partial = final_row(history)
    evaluation, eval_files, problems = read_eval(run_dir)
    warnings += problems
    dataset, condition, seed = identity
    untrained = condition == UNTRAINED
    final_epoch = 0 if untrained else (int(final["epoch"]) if final else None)
    if _is_number(evaluation.get("epoch")):
        eval_epoch = int(evaluation["epoch"])
    elif untrained:
        eval_epoch = 0
    else:  # the evaluation reads the newest checkpoint, which a --max-steps stop leaves mid-epoch
        eval_epoch = int(history[-1]["epoch"]) if history else None
        if evaluation and history and history[-1].get("partial"):
            warnings.append(f"evaluated on a mid-epoch checkpoint (partial epoch {eval_epoch}, "
                            f"step {history[-1].get('step')})")
    epochs_planned = None if untrained or not config else config.get("epochs")
    if final is None and not untrained:
        warnings.append(f"no epoch in {METRICS_FILE} yet")
    elif final_partial:
        warnings.append(f"no complete epoch: final metrics are from a partial epoch "
                        f"(epoch {final_epoch}, step {final.get('step')})")
    elif final_epoch is not None and epochs_planned and final_epoch < epochs_planned:
        warnings.append(f"trained {final_epoch} of {epochs_planned} planned epochs")
    done = (run_dir / DONE_FILE).exists()
    if not done:
        warnings.append(f"no {DONE_FILE}: the run may still be training or have failed")
    return {
        "path": run_dir.relative_to(runs_dir).as_posix() or ".",
        "dataset": dataset, "condition": condition, "seed": seed, "label": condition_label(condition),
        "config": config,
        "device": saved.get("device") if isinstance(saved, dict) else None,
        "train_images": saved.get("train_images") if isinstance(saved, dict) else None,
        "test_images": saved.get("test_images") if isinstance(saved, dict) else None,
        "epochs_planned": epochs_planned,
        "history": curve_rows(history),
        "final": final, "final_epoch": final_epoch, "final_partial": final_partial,
        "steps": int(history[-1]["step"]) if history and _is_number(history[-1].get("step")) else None,
        "eval": evaluation, "eval_files": eval_files, "eval_epoch": eval_epoch,
        "done": done, "warnings": warnings,
    }


def collect_runs(runs_dir: str | Path) -> list[dict[str, Any]]:
    """Every run under RUNS_DIR, in (dataset, condition, seed) order."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise ReportError(f"{runs_dir} is not a folder")
    runs = [run for run in (read_run(d, runs_dir) for d in find_run_dirs(runs_dir)) if run is not None]
    return sorted(runs, key=lambda r: (*group_order(r["dataset"], r["condition"]), r["seed"]))


# ---------------------------------------------------------------------------------------------
# Aggregation over seeds

def condition_label(condition: str) -> str:
    return "Untrained" if condition == UNTRAINED else CONDITION_LABELS.get(condition, condition)


def group_order(dataset: str, condition: str) -> tuple:
    """Datasets and conditions in the paper's order; unknown names after the known, alphabetically."""
    conditions = (UNTRAINED, *MAIN_CONDITIONS, *(c for c in CONDITIONS if c not in MAIN_CONDITIONS))
    return (DATASETS.index(dataset) if dataset in DATASETS else len(DATASETS), dataset,
            conditions.index(condition) if condition in conditions else len(conditions), condition)


def _scalar_stats(runs: list[dict[str, Any]], source: str, epoch_key: str, skip: frozenset) -> dict[str, Any]:
    keys = sorted({k for r in runs for k, v in (r[source] or {}).items() if _is_number(v) and k not in skip})
    result = {}
    for key in keys:
        chosen = [r for r in runs if _is_number((r[source] or {}).get(key))]
        result[key] = _stat([r[source][key] for r in chosen], [r["seed"] for r in chosen],
                            [r[epoch_key] for r in chosen])
    return result


def _curves(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-epoch mean and SEM over the seeds that reached each epoch (n is given per epoch)."""
    keys = sorted({k for r in runs for row in r["history"] for k, v in row.items()
                   if k.startswith(CURVE_PREFIXES) and _is_number(v)})
    curves = {}
    for key in keys:
        by_epoch: dict[int, list[float]] = {}
        for run in runs:
            for row in run["history"]:
                if _is_number(row.get(key)):
                    by_epoch.setdefault(int(row["epoch"]), []).append(float(row[key]))
        epochs = sorted(by_epoch)
        points = [mean_sem(by_epoch[e]) for e in epochs]
        curves[key] = {"epochs": epochs, "mean": [p["mean"] for p in points], "sem": [p["sem"] for p in points],
                       "n": [p["n"] for p in points]}
    return curves


def _occlusion(runs: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, list[str]]:
    """Accuracy-vs-occlusion curves averaged pointwise over seeds that share one probability grid."""
    usable = [r for r in runs if _is_number_list(r["eval"].get(OCCLUSION_PROBABILITIES))]
    if not usable:
        return None, []
    grids = Counter(tuple(r["eval"][OCCLUSION_PROBABILITIES]) for r in usable)
    grid = max(grids, key=lambda g: (grids[g], -min(r["seed"] for r in usable
                                                    if tuple(r["eval"][OCCLUSION_PROBABILITIES]) == g)))
    chosen = [r for r in usable if tuple(r["eval"][OCCLUSION_PROBABILITIES]) == grid]
    flags = [f"seed {r['seed']}: occlusion probabilities differ from the other seeds', left out"
             for r in usable if r not in chosen]
    result: dict[str, Any] = {"probabilities": list(grid), "seeds": [r["seed"] for r in chosen],
                              "epochs": [r["eval_epoch"] for r in chosen]}
    curve_keys = sorted({k for r in chosen for k, v in r["eval"].items() if k.startswith("occlusion/")
                         and k != OCCLUSION_PROBABILITIES and _is_number_list(v) and len(v) == len(grid)})
    for key in curve_keys:
        having = [r for r in chosen if _is_number_list(r["eval"].get(key)) and len(r["eval"][key]) == len(grid)]
        points = [mean_sem(r["eval"][key][i] for r in having) for i in range(len(grid))]
        result[key.split("/", 1)[1]] = {"mean": [p["mean"] for p in points], "sem": [p["sem"] for p in points],
                                        "n": len(having), "seeds": [r["seed"] for r in having]}
    # One number per seed for comparisons: mean accuracy over the strictly partial occlusion levels.
    inner = [i for i, p in enumerate(grid) if 0 < p < 1]
    having = [r for r in chosen if _is_number_list(r["eval"].get("occlusion/test_acc"))
              and len(r["eval"]["occlusion/test_acc"]) == len(grid)]
    if inner and having:
        result["partial_mean_test_acc"] = _stat(
            [float(np.mean([r["eval"]["occlusion/test_acc"][i] for i in inner])) for r in having],
            [r["seed"] for r in having], [r["eval_epoch"] for r in having])
    return result, flags


def normalize_pca(raw: dict[str, Any]) -> dict[str, Any] | None:
    """PCA data in one shape, {points (N, 2), labels (N,), occluded (N,), explained_variance}, from either
    one point array with label/occluded lists or separate clean and occluded point arrays."""
    names = {(k[len(PCA_PREFIX):] if k.startswith(PCA_PREFIX) else k): v for k, v in raw.items()}

    def planar(value) -> np.ndarray | None:
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            return None
        return array[:, :2] if array.ndim == 2 and array.shape[0] > 0 and array.shape[1] >= 2 else None

    def vector(value, length: int) -> np.ndarray | None:
        try:
            array = np.asarray(value)
        except (TypeError, ValueError):
            return None
        return array if array.ndim == 1 and array.shape[0] == length else None

    point_arrays = {k: planar(v) for k, v in names.items() if "label" not in k and "var" not in k}
    point_arrays = {k: v for k, v in point_arrays.items() if v is not None}
    clean = next((k for k in point_arrays if "clean" in k), None)
    occluded = next((k for k in point_arrays if "occlu" in k), None)
    if clean and occluded:
        points = np.concatenate([point_arrays[clean], point_arrays[occluded]])
        n_clean, n_occluded = len(point_arrays[clean]), len(point_arrays[occluded])
        flags = np.array([False] * n_clean + [True] * n_occluded)
        label_keys = [k for k in names if "label" in k or "class" in k]
        clean_labels = next((names[k] for k in label_keys if "clean" in k), None)
        occluded_labels = next((names[k] for k in label_keys if "occlu" in k), None)
        shared = next((names[k] for k in label_keys if "clean" not in k and "occlu" not in k), None)
        if vector(clean_labels, n_clean) is not None and vector(occluded_labels, n_occluded) is not None:
            labels = np.concatenate([np.asarray(clean_labels), np.asarray(occluded_labels)])
        elif vector(shared, n_clean + n_occluded) is not None:
            labels = np.asarray(shared)
        elif n_clean == n_occluded and vector(shared, n_clean) is not None:  # pairs: one label each
            labels = np.concatenate([np.asarray(shared), np.asarray(shared)])
        else:
            labels = None
    elif point_arrays:
        key = next((k for k in point_arrays if k in ("points", "projection", "projected", "coordinates")),
                   next(iter(point_arrays)))
        points = point_arrays[key]
        labels = next((vector(v, len(points)) for k, v in names.items()
                       if ("label" in k or "class" in k) and vector(v, len(points)) is not None), None)
        flags = next((vector(v, len(points)) for k, v in names.items()
                      if "occlu" in k and vector(v, len(points)) is not None), np.zeros(len(points), dtype=bool))
    else:
        return None
    if labels is None:
        return None
    variance = next((v for k, v in names.items() if "var" in k and _is_number_list(v)), None)
    return {"points": points.tolist(), "labels": [int(v) for v in labels],
            "occluded": [bool(v) for v in np.asarray(flags).astype(bool)], "explained_variance": variance}


def _pca(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The PCA data of the lowest seed that has any: one scatter is what the paper shows."""
    for run in sorted(runs, key=lambda r: r["seed"]):
        raw = {k: v for k, v in run["eval"].items() if k.startswith(PCA_PREFIX)}
        if raw:
            view = normalize_pca(raw)
            result = {"seed": run["seed"], "epoch": run["eval_epoch"], "keys": sorted(raw)}
            return {**result, **view} if view else {**result, "error": "PCA keys found but not understood"}
    return None


def _config_differences(runs: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    configs = [r["config"] for r in runs if r["config"]]
    if not configs:
        return {}, {}
    keys = sorted(set().union(*configs) - {"seed"})
    common, differing = {}, {}
    for key in keys:
        values = [c.get(key) for c in configs]
        if all(v == values[0] for v in values):
            common[key] = values[0]
        else:
            differing[key] = {str(r["seed"]): r["config"].get(key) for r in runs if r["config"]}
    return common, differing


def aggregate_group(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and SEM over the seeds of one (dataset, condition)."""
    first = runs[0]
    common, differing = _config_differences(runs)
    flags = [f"seed {r['seed']}: {w}" for r in runs for w in r["warnings"]]
    epochs = sorted({r["final_epoch"] for r in runs if r["final_epoch"] is not None})
    if len(epochs) > 1:
        flags.append("seeds reached different epochs: " + ", ".join(f"seed {r['seed']} {r['final_epoch']}"
                                                                   for r in runs))
    flags += [f"config differs across seeds in {key}: {values}" for key, values in differing.items()]
    occlusion, problems = _occlusion(runs)
    flags += problems
    return {
        "dataset": first["dataset"], "condition": first["condition"], "label": first["label"],
        "seeds": [r["seed"] for r in runs], "n_seeds": len(runs), "runs": [r["path"] for r in runs],
        "final_epochs": [r["final_epoch"] for r in runs], "eval_epochs": [r["eval_epoch"] for r in runs],
        "final_partial_seeds": [r["seed"] for r in runs if r["final_partial"]],
        "epochs_planned": sorted({r["epochs_planned"] for r in runs if r["epochs_planned"] is not None}),
        "train_images": sorted({r["train_images"] for r in runs if r["train_images"] is not None}),
        "test_images": sorted({r["test_images"] for r in runs if r["test_images"] is not None}),
        "config": common, "config_differences": differing,
        "final": _scalar_stats(runs, "final", "final_epoch", ROW_BOOKKEEPING),
        "curves": _curves(runs),
        "eval": _scalar_stats(runs, "eval", "eval_epoch", EVAL_BOOKKEEPING),
        "occlusion": occlusion,
        "pca": _pca(runs),
        "flags": flags,
    }


def final_readout(group: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """The read-out accuracy to compare with the paper's table: the training log's last complete epoch
    (the paper's protocol), else the evaluation suite's read-out (the untrained baseline has no log)."""
    if READOUT in group["final"]:
        return group["final"][READOUT], "final"
    if READOUT in group["eval"]:
        return group["eval"][READOUT], "eval"
    return None, None


def aggregate(runs: list[dict[str, Any]], runs_dir: str | Path = "") -> dict[str, Any]:
    """The study summary: {dataset: {condition: group}} plus one line per run."""
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for run in runs:
        grouped.setdefault((run["dataset"], run["condition"]), []).append(run)
    datasets: dict[str, dict[str, Any]] = {}
    for (dataset, condition) in sorted(grouped, key=lambda key: group_order(*key)):
        seeds = Counter(r["seed"] for r in grouped[(dataset, condition)])
        if any(count > 1 for count in seeds.values()):
            raise ReportError(f"{dataset}/{condition}: the same seed appears in more than one folder "
                              f"({', '.join(r['path'] for r in grouped[(dataset, condition)])})")
        datasets.setdefault(dataset, {})[condition] = aggregate_group(grouped[(dataset, condition)])
    return {
        "format": SUMMARY_FORMAT,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "runs_dir": str(runs_dir),
        "sem": SEM_DEFINITION,
        "datasets": datasets,
        "runs": [{k: r[k] for k in ("path", "dataset", "condition", "seed", "final_epoch", "final_partial",
                                    "eval_epoch", "eval_files", "done", "warnings")} for r in runs],
    }


# ---------------------------------------------------------------------------------------------
# Writing

def _json_safe(value: Any) -> Any:
    """NaN and infinities as null: they are not JSON, and a missing number is what they mean here."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def write_summary(summary: dict[str, Any], out_dir: str | Path) -> Path:
    path = Path(out_dir) / SUMMARY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_json_safe(summary), indent=1, allow_nan=False) + "\n")
    return path


def read_summary(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def runs_table(runs: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """One row per run: identity, budget, final-epoch metrics ('final:' columns), evaluation ('eval:')."""
    fixed = ["dataset", "condition", "seed", "path", "done", "epochs_planned", "final_epoch", "final_partial",
             "steps", "eval_epoch", "train_images", "test_images"]
    final_keys = sorted({k for r in runs for k, v in (r["final"] or {}).items()
                         if _is_number(v) and k not in ROW_BOOKKEEPING})
    eval_keys = sorted({k for r in runs for k, v in r["eval"].items()
                        if (_is_number(v) or _is_number_list(v)) and not k.startswith(PCA_PREFIX)
                        and k not in EVAL_BOOKKEEPING})
    columns = fixed + [f"final:{k}" for k in final_keys] + [f"eval:{k}" for k in eval_keys] + \
        ["eval_files", "warnings"]
    rows = []
    for run in runs:
        row: dict[str, Any] = {k: run[k] for k in fixed}
        row.update({f"final:{k}": (run["final"] or {}).get(k) for k in final_keys})
        row.update({f"eval:{k}": json.dumps(v) if isinstance(v, list) else v
                    for k, v in ((k, run["eval"].get(k)) for k in eval_keys)})
        row["eval_files"] = ";".join(run["eval_files"])
        row["warnings"] = " | ".join(run["warnings"])
        rows.append(row)
    return columns, rows


def write_runs_csv(runs: list[dict[str, Any]], out_dir: str | Path) -> Path:
    path = Path(out_dir) / RUNS_CSV
    path.parent.mkdir(parents=True, exist_ok=True)
    columns, rows = runs_table(runs)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path
