"""Wall time of each evaluation of the suite on real data, for a full-size untrained network.

The untrained network costs what a trained one costs to evaluate, and needs no run. Prints the
shared encodings and every evaluation's seconds (the suite's log), then the converged read-out on
random 50,000 x 256 latents (the size of CIFAR-10's training set), whose time depends on the latents.
The machine's load is printed too: on a shared CPU the numbers scale with it.

    python benchmarks/eval_speed.py --data-root /path/with/cifar10 --out /tmp/untrained-eval
    python benchmarks/eval_speed.py --data-root DATA --only converged_probe,distances --threads 2
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from padream.eval.converged_probe import converged_probe
from padream.eval.suite import EVALUATIONS, evaluate_untrained_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--out", required=True, help="folder for eval/*.json (recomputed every time)")
    parser.add_argument("--only", default=",".join(e for e in EVALUATIONS if e != "fid"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()}")

    def log(line: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {line}", flush=True)

    start = time.perf_counter()
    evaluate_untrained_dir(args.out, args.dataset, 0, data_root=args.data_root, device=args.device,
                           which=args.only.split(","), overwrite=True, log=log)
    log(f"suite total {time.perf_counter() - start:.1f}s")

    generator = torch.Generator().manual_seed(0)
    train, test = torch.randn(50_000, 256, generator=generator), torch.randn(10_000, 256, generator=generator)
    train_labels = torch.randint(0, 10, (50_000,), generator=generator)
    test_labels = torch.randint(0, 10, (10_000,), generator=generator)
    start = time.perf_counter()
    result = converged_probe(train, train_labels, test, test_labels, generator)
    log(f"converged read-out on random 50000 x 256 latents: {time.perf_counter() - start:.1f}s "
        f"({result['converged/iterations']} final iterations, test acc {result['converged/test_acc']:.4f})")
    print(f"load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
