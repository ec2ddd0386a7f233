"""Evaluate saved runs (or an untrained encoder) without training: the `padream eval` command.

Evaluation never falls back to a random network: a run without a loadable checkpoint is an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from padream.checkpoint import CheckpointError, load_latest_checkpoint
from padream.config import TrainConfig
from padream.data import load_dataset
from padream.device import autocast_factory, resolve_device, resolve_precision
from padream.eval.linear_probe import linear_separability
from padream.networks import Encoder, Generator, build_networks
from padream.rng import RandomStreams, generator_for
from padream.train import CHECKPOINT_DIR


def load_run(run_dir: str | Path) -> tuple[TrainConfig, dict[str, Any], Path]:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"run folder {run_dir} does not exist")
    found = load_latest_checkpoint(run_dir / CHECKPOINT_DIR)
    if found is None:
        raise CheckpointError(f"no loadable checkpoint in {run_dir / CHECKPOINT_DIR}; train the run first")
    path, state = found
    return TrainConfig.from_dict(state["config"]), state, path


def networks_from_state(config: TrainConfig, state: dict[str, Any]) -> tuple[Encoder, Generator]:
    encoder, generator = Encoder(config.latent_dim, config.base_channels), Generator(config.latent_dim,
                                                                                     config.base_channels)
    encoder.load_state_dict(state["encoder"])
    generator.load_state_dict(state["generator"])
    return encoder, generator


def _read_out(encoder, config: TrainConfig, data_root, device_name: str, precision: str, seed_purpose) -> dict:
    device = resolve_device(device_name)
    precision = resolve_precision(precision, device)
    train, test = load_dataset(config.dataset, data_root)
    result = linear_separability(encoder.to(device), train.to(device), test.to(device), device,
                                 generator_for(config.seed, *seed_purpose), autocast_factory(device, precision),
                                 epochs=config.probe_epochs, lr=config.probe_lr, batch_size=config.probe_batch_size)
    return {**result, "dataset": config.dataset, "test_images": len(test), "train_images": len(train),
            "precision": precision}


def evaluate_run(run_dir: str | Path, data_root=None, device: str = "auto", precision: str | None = None) -> dict:
    config, state, path = load_run(run_dir)
    encoder, _ = networks_from_state(config, state)
    result = _read_out(encoder, config, data_root, device, precision or config.precision,
                       ("eval", state["step"]))
    return {**result, "checkpoint": str(path), "epoch": state["epoch"], "step": state["step"],
            "condition": config.condition, "seed": config.seed}


def evaluate_untrained(dataset: str, seed: int = 0, data_root=None, device: str = "auto",
                       precision: str = "auto") -> dict:
    """The baseline every trained read-out is compared with: the same architecture, just initialised."""
    config = TrainConfig(dataset=dataset, seed=seed)
    encoder, _ = build_networks(config.latent_dim, config.base_channels, RandomStreams(seed).init)
    return {**_read_out(encoder, config, data_root, device, precision, ("eval", 0)), "untrained": True,
            "seed": seed}

