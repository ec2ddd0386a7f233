"""Kill `padream train` many times at fault points and random moments, resume, and compare bitwise
with an uninterrupted run (the larger-scale version of tests/test_reliability.py).

    python scripts/crash_resume.py --images 2000 --epochs 4 --random-kills 10 --workdir /tmp/crash
    python scripts/crash_resume.py --data-root ../shared/datasets --epochs 1 --max-steps 200 --full-size

Exits 0 when every resumed run equals the reference, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

from padream.reliability import compare_runs, crash_and_resume, launch, timed


def write_generated(root: Path, images: int) -> Path:
    rng = np.random.default_rng(0)
    folder = root / "cifar10"
    folder.mkdir(parents=True, exist_ok=True)
    for split, count in (("train", images), ("test", max(images // 5, 10))):
        np.savez(folder / f"{split}.npz", images=rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8),
                 labels=np.arange(count, dtype=np.int64) % 10)
    return root


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default="crash-resume")
    parser.add_argument("--data-root", help="real data (default: a generated data set)")
    parser.add_argument("--images", type=int, default=2000, help="generated training images")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--max-steps", type=int)
    parser.add_argument("--full-size", action="store_true", help="the paper's network instead of a small one")
    parser.add_argument("--random-kills", type=int, default=10)
    parser.add_argument("--max-delay", type=float, default=20.0, help="random kills land within this many seconds")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    data_root = Path(args.data_root) if args.data_root else write_generated(work / "data", args.images)
    train_args = ["--data-root", str(data_root), "--epochs", str(args.epochs), "--threads", "1",
                  "--device", "cpu", "--precision", "fp32", "--probe-epochs", "2"]
    if args.max_steps:
        train_args += ["--max-steps", str(args.max_steps)]
    if not args.full_size:
        train_args += ["--latent-dim", "32", "--base-channels", "8"]

    _, reference_seconds = timed(launch, work / "reference", train_args)
    points = [f"step:{n}" for n in (1, 7, 30)] + ["checkpoint_write:1", "checkpoint_write:2", "probe:1", "probe:2"]
    outcome, seconds = timed(crash_and_resume, work / "crashed", train_args, points, args.random_kills,
                             args.seed, args.max_delay)
    differences = compare_runs(work / "reference", work / "crashed")
    report = {**outcome, "fault_points": points, "differences": differences,
              "reference_seconds": round(reference_seconds, 1), "crashed_seconds": round(seconds, 1)}
    print(json.dumps(report, indent=2))
    return 0 if not differences else 1


if __name__ == "__main__":
    sys.exit(main())
