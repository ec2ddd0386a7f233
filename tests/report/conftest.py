"""Hand-made run folders in the study layout RUNS/DATASET/CONDITION/seedK, with numbers chosen by the test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from padream.config import make_config


def epoch_row(epoch: int, acc: float, partial: bool = False, **extra) -> dict:
    row = {"epoch": epoch, "step": 10 * epoch, "seconds": 1.0, "loss/wake_rec": 1.0 / epoch,
           "loss/wake_kl": 0.5, "probe/test_acc": acc, "probe/train_acc": acc + 0.1,
           "probe/test_acc_last5": acc - 0.01, "probe_seconds": 0.1, **extra}
    if partial:
        row["partial"] = True
    return row


def _write_run(runs_dir: Path, dataset: str, condition: str, seed: int, rows: list[dict] | None = None,
               evals: dict[str, dict] | None = None, done: bool = True, config: dict | None = None,
               epochs: int = 3) -> Path:
    run_dir = Path(runs_dir) / dataset / condition / f"seed{seed}"
    run_dir.mkdir(parents=True, exist_ok=True)
    if condition != "untrained":
        resolved = config or make_config(condition, dataset=dataset, seed=seed, epochs=epochs, latent_dim=8,
                                         base_channels=4).to_dict()
        (run_dir / "config.json").write_text(json.dumps({"config": resolved, "device": "cpu", "precision": "fp32",
                                                         "train_images": 200, "test_images": 100}))
        (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows or []))
    if evals:
        (run_dir / "eval").mkdir(exist_ok=True)
        for name, values in evals.items():
            (run_dir / "eval" / f"{name}.json").write_text(json.dumps(values))
    if done:
        (run_dir / "done.json").write_text(json.dumps({"cell": f"{dataset}/{condition}/seed{seed}"}))
    return run_dir


@pytest.fixture
def write_run():
    """Factory: write_run(runs_dir, dataset, condition, seed, rows=[...], evals={name: dict}, done=True)."""
    return _write_run


@pytest.fixture
def row():
    """Factory: a metrics.jsonl row for `epoch` with read-out test accuracy `acc`."""
    return epoch_row
