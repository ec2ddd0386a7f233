"""Speed of the real PAD training step and of the per-epoch read-out, against this machine's peak.

Prints (and with --json writes) seconds per iteration (median after warm-up), images/s, the
projected CIFAR-10 epoch time, achieved GFLOP/s from an analytic count of the step's convolution
and dense arithmetic, and fp32/bf16 matmul peaks measured in the same process, so ratios are
comparable even when the machine's speed drifts.

    python benchmarks/train_speed.py --iters 30 --json speed.json
    python benchmarks/train_speed.py --precision fp32 --threads 2 --batch-size 64
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from padream.config import make_config
from padream.data import ImageSet, to_unit_range
from padream.device import autocast_factory, resolve_device, resolve_precision
from padream.eval.linear_probe import linear_separability
from padream.phases import run_cycle
from padream.rng import generator_for
from padream.train import build_cycle

CIFAR_TRAIN, CIFAR_TEST = 50_000, 10_000


def layer_macs(latent_dim: int = 256, c: int = 64) -> dict[str, list[int]]:
    """Multiply-accumulates per image of each layer's forward pass, in network order."""
    encoder_trunk = [16 * 16 * c * 3 * 16, 8 * 8 * 2 * c * c * 16, 4 * 4 * 4 * c * 2 * c * 16]
    latent_head, discriminator_head = latent_dim * 4 * c * 16, 4 * c * 16
    generator = [latent_dim * 4 * c * 16, 4 * 4 * 4 * c * 2 * c * 16, 8 * 8 * 2 * c * c * 16, 16 * 16 * c * 3 * 16]
    return {"trunk": encoder_trunk, "latent": [latent_head], "disc": [discriminator_head], "generator": generator}


def step_flops(phases: tuple[str, ...], batch: int, latent_dim: int = 256, c: int = 64) -> float:
    """Analytic FLOPs (2 per MAC) of one cycle. Backward costs one forward for weight gradients plus
    one for input gradients wherever the input needs a gradient (not the image in Wake/NREM, not the
    mixed latent entering G in REM)."""
    m = layer_macs(latent_dim, c)
    trunk, lat, disc, gen = sum(m["trunk"]), m["latent"][0], m["disc"][0], sum(m["generator"])
    first_conv, first_deconv = m["trunk"][0], m["generator"][0]
    macs = 0
    if "wake" in phases:
        encoder = trunk + lat + disc
        macs += encoder + gen + 2 * gen + encoder + (encoder - first_conv)
    if "nrem" in phases:
        encoder = trunk + lat
        macs += gen + encoder + encoder + (encoder - first_conv)
    if "rem" in phases:
        encoder = trunk + disc
        macs += gen + encoder + 2 * encoder + gen + (gen - first_deconv)
    return 2.0 * macs * batch


def matmul_peak_gflops(dtype: torch.dtype, size: int = 2048, seconds: float = 1.0) -> float:
    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    a @ b
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or count < 2:
        a @ b
        count += 1
    return 2 * size ** 3 * count / (time.perf_counter() - start) / 1e9


def synthetic_set(count: int, generator: torch.Generator) -> ImageSet:
    images = torch.randint(0, 256, (count, 3, 32, 32), dtype=torch.uint8, generator=generator)
    return ImageSet(images, torch.randint(0, 10, (count,), generator=generator), "synthetic")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iters", type=int, default=30, help="timed iterations (after warm-up)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--condition", default="pad")
    parser.add_argument("--no-probe", action="store_true", help="skip timing the read-out")
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    config = make_config(args.condition, batch_size=args.batch_size, precision=args.precision, device=args.device)
    device = resolve_device(config.device)
    precision = resolve_precision(config.precision, device)
    autocast = autocast_factory(device, precision)
    cycle = build_cycle(config, device, autocast)
    data = synthetic_set(max(4096, args.batch_size * 8), generator_for(0, "bench"))
    images = data.images.to(device)

    times = []
    for i in range(args.warmup + args.iters):
        index = torch.randint(0, images.shape[0], (args.batch_size,))
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        run_cycle(cycle, to_unit_range(images[index]))
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    flops = step_flops(config.phases, args.batch_size)

    fp32_peak = matmul_peak_gflops(torch.float32)
    bf16_peak = matmul_peak_gflops(torch.bfloat16, size=2048 if precision == "bf16" else 512)
    steps_per_epoch = CIFAR_TRAIN // args.batch_size
    result = {
        "device": str(device), "precision": precision, "threads": torch.get_num_threads(),
        "batch_size": args.batch_size, "condition": args.condition, "iters": args.iters,
        "seconds_per_iter": seconds, "seconds_per_iter_min": min(times),
        "images_per_second": args.batch_size / seconds, "epoch_seconds": seconds * steps_per_epoch,
        "gflop_per_iter": flops / 1e9, "achieved_gflops": flops / seconds / 1e9,
        "fp32_peak_gflops": fp32_peak, "bf16_peak_gflops": bf16_peak,
    }
    result["fraction_of_fp32_peak"] = result["achieved_gflops"] / fp32_peak
    result["fraction_of_bf16_peak"] = result["achieved_gflops"] / bf16_peak

    if not args.no_probe:
        train = synthetic_set(CIFAR_TRAIN, generator_for(1, "bench"))
        test = synthetic_set(CIFAR_TEST, generator_for(2, "bench"))
        start = time.perf_counter()
        linear_separability(cycle.encoder, train.to(device), test.to(device), device, generator_for(3, "bench"),
                            autocast, epochs=config.probe_epochs, lr=config.probe_lr,
                            batch_size=config.probe_batch_size)
        result["probe_seconds"] = time.perf_counter() - start
        result["probe_fraction_of_epoch"] = result["probe_seconds"] / result["epoch_seconds"]

    for key, value in result.items():
        print(f"{key:>26}: {value:.4g}" if isinstance(value, float) else f"{key:>26}: {value}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
