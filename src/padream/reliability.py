"""Kill-and-resume harness: SIGKILL `padream train` at chosen or random moments, resume, compare.

Used by the test suite (small) and by scripts/crash_resume.py (larger). The guarantee checked is
bitwise: on the CPU with a fixed thread count, a run killed any number of times and resumed with
``--resume`` ends with the same weights, optimizer moments, memories, RNG states and metrics.jsonl
lines (timings aside) as a run that was never interrupted. That holds because every checkpoint holds
the complete training state and work after the newest checkpoint is redone from it exactly; on CUDA,
non-deterministic kernels can break bitwise equality, and only statistical equality is promised there.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from padream.checkpoint import load_latest_checkpoint
from padream.faults import ENV
from padream.train import CHECKPOINT_DIR, METRICS_FILE

TIMING_KEYS = ("seconds", "probe_seconds")


def train_command(run_dir: Path, train_args: list[str]) -> list[str]:
    return [sys.executable, "-m", "padream.cli", "train", "--run-dir", str(run_dir), "--resume", "--no-progress",
            *train_args]


def launch(run_dir: Path, train_args: list[str], kill_at: str | None = None,
           kill_after_seconds: float | None = None, timeout: float = 600) -> int:
    """Run one training process; kill it at a fault point or after a delay. Returns its exit code."""
    env = {k: v for k, v in os.environ.items() if k != ENV}
    if kill_at:
        env[ENV] = kill_at
    process = subprocess.Popen(train_command(run_dir, train_args), env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    try:
        if kill_after_seconds is not None:
            try:
                process.wait(timeout=kill_after_seconds)
            except subprocess.TimeoutExpired:
                process.kill()
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    if process.returncode not in (0, -9):
        raise RuntimeError(f"training process failed ({process.returncode}):\n{stderr[-2000:]}")
    return process.returncode


def crash_and_resume(run_dir: Path, train_args: list[str], fault_points: list[str],
                     random_kills: int = 0, seed: int = 0, max_delay: float = 10.0) -> dict[str, Any]:
    """Kill the run once per fault point (POINT:N) and `random_kills` times after random delays,
    resuming after each, then finish it. Returns how many kills actually landed."""
    rng = random.Random(seed)
    landed = 0
    for point in fault_points:
        landed += launch(run_dir, train_args, kill_at=point) == -9
    for _ in range(random_kills):
        landed += launch(run_dir, train_args, kill_after_seconds=rng.uniform(0.5, max_delay)) == -9
    if launch(run_dir, train_args) != 0:
        raise RuntimeError("the final resume did not finish")
    return {"kills_tried": len(fault_points) + random_kills, "kills_landed": landed}


def compare_runs(first: Path, second: Path) -> list[str]:
    """Differences between two runs' final states and metrics; empty when they agree bitwise."""
    differences: list[str] = []
    states = []
    for run in (first, second):
        found = load_latest_checkpoint(Path(run) / CHECKPOINT_DIR)
        if found is None:
            return [f"{run}: no checkpoint"]
        states.append(found[1])
    for key in ("encoder", "generator", "encoder_optimizer", "generator_optimizer", "memory", "rng"):
        differences += [f"{key}{path}" for path in _tensor_differences(states[0][key], states[1][key])]
    for key in ("epoch", "step"):
        if states[0][key] != states[1][key]:
            differences.append(f"{key}: {states[0][key]} != {states[1][key]}")
    rows = [_metrics(run) for run in (first, second)]
    if len(rows[0]) != len(rows[1]):
        differences.append(f"metrics.jsonl: {len(rows[0])} lines vs {len(rows[1])}")
    for number, (a, b) in enumerate(zip(*rows), 1):
        if a != b:
            keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            differences.append(f"metrics.jsonl line {number}: {', '.join(keys)} differ")
    return differences


def _metrics(run: Path) -> list[dict[str, Any]]:
    lines = (Path(run) / METRICS_FILE).read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING_KEYS} for line in lines]


def _tensor_differences(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        same = a.shape == b.shape and a.dtype == b.dtype and torch.equal(a, b)
        return [] if same else [path]
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return [f"{path} (keys)"]
        return [d for k in a for d in _tensor_differences(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return [f"{path} (length)"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _tensor_differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [path]


def timed(function, *args, **kwargs) -> tuple[Any, float]:
    start = time.perf_counter()
    return function(*args, **kwargs), time.perf_counter() - start
