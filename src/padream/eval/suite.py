"""Every evaluation of one run (or of an untrained encoder), one JSON file each in RUN_DIR/eval/.

One file per evaluation keeps them independent: a crash or an added metric costs only what is
missing, a file present for the same checkpoint step is not recomputed, and the report merges
whatever files exist. Each split is encoded once and its latents shared by every evaluation that
needs them (encoding is the expensive part on a CPU). Each evaluation draws from its own stream,
generator_for(seed, "eval", name), so adding or skipping one never changes another's numbers; the
SGD read-out keeps the stream of `padream eval` (("eval", step)) and so reproduces its numbers.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from padream.checkpoint import atomic_write_text
from padream.config import ConfigError, TrainConfig, closest
from padream.data import ImageSet, load_dataset
from padream.device import autocast_factory, resolve_device, resolve_precision
from padream.eval import fid as fid_module
from padream.eval.converged_probe import converged_probe
from padream.eval.dreams import dream_grids, fixed_dream_inputs, fixed_dream_noise
from padream.eval.latent_distances import latent_distances
from padream.eval.linear_probe import encode_images, fit_and_score_linear_probe
from padream.eval.occlusion_robustness import occlusion_accuracies
from padream.eval.pca import latent_pca
from padream.evaluate import load_run, networks_from_state
from padream.networks import Encoder, Generator, build_networks
from padream.rng import RandomStreams, generator_for

EVAL_DIR = "eval"
EVALUATIONS = ("linear_probe", "converged_probe", "occlusion", "distances", "pca", "dreams", "fid")
DREAMS_FILE = "dreams.png"


@dataclass
class _Context:
    """What the evaluations of one encoder share: networks, data, RNG seed, and cached latents."""

    encoder: Encoder
    generator: Generator
    config: TrainConfig
    train: ImageSet
    test: ImageSet
    device: torch.device
    autocast: Callable
    step: int
    out_dir: Path
    fid_weights: Any
    fid_samples: int
    log: Callable[[str], None]
    cache: dict[str, Any] = field(default_factory=dict)
    encode_seconds: float = 0.0  # spent encoding whole splits, so far

    def rng(self, name: str) -> torch.Generator:
        return generator_for(self.config.seed, "eval", name)

    def latents(self, split: str) -> torch.Tensor:
        if split not in self.cache:
            images = (self.train if split == "train" else self.test).images
            start = time.perf_counter()
            self.cache[split] = encode_images(self.encoder, images, self.device, self.autocast)
            seconds = time.perf_counter() - start
            self.encode_seconds += seconds
            self.log(f"encoded the {split} split ({images.shape[0]} images) in {seconds:.1f}s")
        return self.cache[split]

    def labels(self, split: str) -> torch.Tensor:
        return (self.train if split == "train" else self.test).labels.to(self.device)

    def probe(self) -> tuple[dict, torch.Tensor, torch.Tensor]:
        """The paper's SGD read-out, fitted once for the probe result and the occlusion curve."""
        if "probe" not in self.cache:
            cfg = self.config
            self.cache["probe"] = fit_and_score_linear_probe(
                self.latents("train"), self.labels("train"), self.latents("test"), self.labels("test"),
                generator_for(cfg.seed, "eval", self.step), epochs=cfg.probe_epochs, lr=cfg.probe_lr,
                batch_size=cfg.probe_batch_size)
        return self.cache["probe"]


def _linear_probe(ctx: _Context) -> dict:
    result, _, _ = ctx.probe()
    return dict(result)


def _converged_probe(ctx: _Context) -> dict:
    return converged_probe(ctx.latents("train"), ctx.labels("train"), ctx.latents("test"), ctx.labels("test"),
                           ctx.rng("converged_probe"))


def _occlusion(ctx: _Context) -> dict:
    _, weight, bias = ctx.probe()
    return occlusion_accuracies(ctx.encoder, weight, bias, ctx.test.images, ctx.test.labels, ctx.device,
                                ctx.rng("occlusion"), ctx.autocast, clean_latents=ctx.latents("test"))


def _distances(ctx: _Context) -> dict:
    return latent_distances(ctx.encoder, ctx.test.images, ctx.test.labels, ctx.device, ctx.rng("distances"),
                            ctx.autocast, latents=ctx.latents("test"))


def _pca(ctx: _Context) -> dict:
    return latent_pca(ctx.encoder, ctx.test.images, ctx.test.labels, ctx.device, ctx.rng("pca"), ctx.autocast,
                      latents=ctx.latents("test"))


def _dreams(ctx: _Context) -> dict:
    wake, old = fixed_dream_inputs(ctx.train.images)
    path = ctx.out_dir / EVAL_DIR / DREAMS_FILE
    result = dream_grids(ctx.encoder, ctx.generator, wake, old, path, fixed_dream_noise(), ctx.device,
                         memory_mix=ctx.config.rem_memory_mix, noise_mix=ctx.config.rem_noise_mix,
                         autocast=ctx.autocast)
    return {**result, "dreams/path": f"{EVAL_DIR}/{DREAMS_FILE}"}


def _fid(ctx: _Context) -> dict:
    network = fid_module.load_fid_inception(ctx.fid_weights).to(ctx.device)
    samples = min(ctx.fid_samples, len(ctx.train))
    if samples < ctx.fid_samples:
        ctx.log(f"FID: only {samples} training images, fewer than the {ctx.fid_samples} asked for")
    return fid_module.dream_fid(ctx.encoder, ctx.generator, ctx.train.images, network, ctx.device, ctx.rng("fid"),
                                samples=samples, memory_mix=ctx.config.rem_memory_mix,
                                noise_mix=ctx.config.rem_noise_mix, autocast=ctx.autocast,
                                feature_network_name=fid_module.WEIGHTS_FILE)


RUNNERS: dict[str, Callable[[_Context], dict]] = {
    "linear_probe": _linear_probe, "converged_probe": _converged_probe, "occlusion": _occlusion,
    "distances": _distances, "pca": _pca, "dreams": _dreams, "fid": _fid,
}


def selected_evaluations(which, fid_weights=None) -> tuple[str, ...]:
    """The evaluations to run, in EVALUATIONS order. None means all; FID is then included only when
    weights were passed or $PADREAM_FID_WEIGHTS names an existing file (it is slow and needs them)."""
    if which is None:
        env = os.environ.get(fid_module.WEIGHTS_ENV)
        with_fid = fid_weights is not None or bool(env and Path(env).expanduser().is_file())
        return tuple(name for name in EVALUATIONS if name != "fid" or with_fid)
    names = [which] if isinstance(which, str) else list(which)
    for name in names:
        if name not in EVALUATIONS:
            raise ConfigError(f"unknown evaluation '{name}'{closest(name, EVALUATIONS)}; "
                              f"choose from {', '.join(EVALUATIONS)}")
    return tuple(name for name in EVALUATIONS if name in names)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def _existing(path: Path, step: int) -> dict | None:
    """A result file already written for this checkpoint step, or None (missing, unreadable or stale)."""
    try:
        result = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return result if isinstance(result, dict) and result.get("step") == step else None


def _run(ctx: _Context, meta: dict[str, Any], names: tuple[str, ...]) -> dict[str, dict]:
    folder = ctx.out_dir / EVAL_DIR
    folder.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in names:
        start, encoding = time.perf_counter(), ctx.encode_seconds
        result = RUNNERS[name](ctx)
        seconds = time.perf_counter() - start - (ctx.encode_seconds - encoding)  # shared encodings excluded
        record = {**meta, **result, f"seconds/{name}": round(seconds, 3)}
        path = folder / f"{name}.json"
        atomic_write_text(path, json.dumps(record, indent=2, sort_keys=True) + "\n")
        ctx.log(f"{name}: {seconds:.1f}s (shared encodings excluded), wrote {path}")
        results[name] = record
    return results


def _data(config: TrainConfig, data_root, data) -> tuple[ImageSet, ImageSet]:
    return data if data is not None else load_dataset(config.dataset, data_root)


def evaluate_run_dir(run_dir: str | Path, data_root=None, device: str = "auto", fid_weights=None,
                     which=None, overwrite: bool = False, data: tuple[ImageSet, ImageSet] | None = None,
                     precision: str | None = None, fid_samples: int = fid_module.SAMPLES,
                     log: Callable[[str], None] | None = None) -> dict[str, dict]:
    """Evaluate the newest checkpoint of a run; returns {evaluation name: the JSON it wrote or kept}.

    `data` = (train, test) replaces loading the run's dataset; `which` names a subset of EVALUATIONS.
    """
    selected_evaluations(which, fid_weights)  # unknown names fail before the checkpoint is read
    config, state, path = load_run(run_dir)
    encoder, generator = networks_from_state(config, state)
    meta = {"checkpoint": str(path), "epoch": state["epoch"], "step": state["step"], "condition": config.condition,
            "dataset": config.dataset, "seed": config.seed, "untrained": False}
    return _evaluate(encoder, generator, config, Path(run_dir), meta, state["step"], data_root, device, fid_weights,
                     which, overwrite, data, precision or config.precision, fid_samples, log)


def evaluate_untrained_dir(out_dir: str | Path, dataset: str = "cifar10", seed: int = 0, data_root=None,
                           device: str = "auto", fid_weights=None, which=None, overwrite: bool = False,
                           data: tuple[ImageSet, ImageSet] | None = None, precision: str = "auto",
                           fid_samples: int = fid_module.SAMPLES, latent_dim: int = 256, base_channels: int = 64,
                           log: Callable[[str], None] | None = None) -> dict[str, dict]:
    """The same evaluations for freshly initialised networks (the baseline of Fig. 6e), into OUT_DIR/eval/.

    The networks are those `padream train` starts from with this seed (and `padream eval --untrained` reads).
    """
    config = TrainConfig(dataset=dataset, seed=seed, latent_dim=latent_dim, base_channels=base_channels)
    encoder, generator = build_networks(latent_dim, base_channels, RandomStreams(seed).init)
    meta = {"checkpoint": None, "epoch": 0, "step": 0, "condition": "untrained", "dataset": dataset, "seed": seed,
            "untrained": True}
    return _evaluate(encoder, generator, config, Path(out_dir), meta, 0, data_root, device, fid_weights, which,
                     overwrite, data, precision, fid_samples, log)


def _evaluate(encoder, generator, config, out_dir, meta, step, data_root, device, fid_weights, which, overwrite,
              data, precision, fid_samples, log) -> dict[str, dict]:
    log = log or _stderr
    names = selected_evaluations(which, fid_weights)  # unknown names fail before anything is loaded
    kept = {} if overwrite else {name: found for name in names
                                 if (found := _existing(out_dir / EVAL_DIR / f"{name}.json", step)) is not None}
    for name in kept:
        log(f"{name}: {out_dir / EVAL_DIR / name}.json exists for step {step}, kept (overwrite to recompute)")
    pending = tuple(name for name in names if name not in kept)
    if not pending:
        return kept
    if "fid" in pending:
        fid_module.resolve_weights(fid_weights)  # a missing weights file fails now, not after the other evaluations
    torch_device = resolve_device(device)
    precision = resolve_precision(precision, torch_device)
    train, test = _data(config, data_root, data)
    ctx = _Context(encoder.to(torch_device), generator.to(torch_device), config, train, test, torch_device,
                   autocast_factory(torch_device, precision), step, out_dir, fid_weights, fid_samples, log)
    meta = {**meta, "train_images": len(train), "test_images": len(test), "precision": precision}
    written = _run(ctx, meta, pending)
    return {name: kept.get(name) or written[name] for name in names}


def summary_lines(results: dict[str, dict]) -> list[str]:
    """One human-readable line per evaluation result."""
    lines = []
    for name, r in results.items():
        if name == "linear_probe":
            line = (f"read-out (SGD): test {100 * r['probe/test_acc']:.2f}%, last-5 mean "
                    f"{100 * r['probe/test_acc_last5']:.2f}%, train {100 * r['probe/train_acc']:.2f}%")
        elif name == "converged_probe":
            line = (f"read-out (converged, C={r['converged/C']:g}): test {100 * r['converged/test_acc']:.2f}%, "
                    f"train {100 * r['converged/train_acc']:.2f}%")
        elif name == "occlusion":
            curve = ", ".join(f"{p:g}: {100 * a:.1f}%" for p, a in zip(r["occlusion/probabilities"],
                                                                         r["occlusion/test_acc"]))
            line = f"occlusion (size {r['occlusion/size']}): {curve}"
        elif name == "distances":
            line = (f"distances: intra/inter {r['distance/intra_inter_ratio']:.3f}, "
                    f"clean-occluded/inter {r['distance/clean_occluded_inter_ratio']:.3f}")
        elif name == "pca":
            shares = " + ".join(f"{100 * v:.1f}%" for v in r["pca/explained_variance_ratio"])
            line = f"pca: {shares} of the variance, {len(r['pca/points'])} points"
        elif name == "dreams":
            line = f"dreams: {r['dreams/path']} ({r['dreams/images']} each of wake / NREM / REM)"
        elif name == "fid":
            line = f"fid ({r['fid/samples']} samples): NREM {r['fid/nrem']:.2f}, REM {r['fid/rem']:.2f}"
        else:
            line = name
        lines.append(line)
    return lines
