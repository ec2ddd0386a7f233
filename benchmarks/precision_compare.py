"""Does bf16 change the science? 3-epoch CIFAR-10 PAD runs, two seeds, under fp32 and under bf16.

    python benchmarks/precision_compare.py --data-root ../shared/datasets --runs-dir precision-runs

bf16 passes when its mean read-out accuracy lies within the fp32 seed-to-seed spread, or at most
1.5 points from the fp32 mean. Runs are resumable (rerun the same command after an interruption).
Only worth running where bf16 is fast (CUDA, or CPUs with AMX / AVX512-BF16): on a CPU without
them, bf16 convolutions are emulated and one 3-epoch run takes hours.
"""

from __future__ import annotations

import argparse
import json
import statistics

from padream.experiments.grid import make_grid, run_sequential

TOLERANCE_POINTS = 1.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root")
    parser.add_argument("--runs-dir", default="precision-runs")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", help="write the comparison here")
    args = parser.parse_args()

    seeds = [int(s) for s in args.seeds.split(",")]
    accuracy: dict[str, list[float]] = {}
    for precision in ("fp32", "bf16"):
        options = dict(epochs=args.epochs, precision=precision, device=args.device)
        results = run_sequential(make_grid(["cifar10"], ["pad"], seeds), f"{args.runs_dir}/{precision}", options,
                                 args.data_root, evaluate=False)
        failed = [r for r in results if r["status"] == "failed"]
        if failed:
            raise SystemExit(f"{precision} runs failed: {failed}")
        accuracy[precision] = []
        for seed in seeds:
            path = f"{args.runs_dir}/{precision}/cifar10/pad/seed{seed}/metrics.jsonl"
            with open(path) as handle:
                rows = [json.loads(line) for line in handle if line.strip()]
            accuracy[precision].append(100 * rows[-1]["probe/test_acc"])

    fp32, bf16 = accuracy["fp32"], accuracy["bf16"]
    spread = max(fp32) - min(fp32)
    difference = statistics.mean(bf16) - statistics.mean(fp32)
    result = {"epochs": args.epochs, "seeds": seeds, "fp32": fp32, "bf16": bf16, "fp32_spread": spread,
              "mean_difference": difference,
              "passes": abs(difference) <= max(spread, TOLERANCE_POINTS)}
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
