"""Shared fixtures: a tiny configuration, hand-built wake-sleep cycles and small generated data sets.

Everything runs on the CPU in fp32 with networks of a few thousand parameters, so the whole suite
takes well under a few minutes on two cores.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pytest
import torch

from padream.config import make_config
from padream.data import ImageSet, to_unit_range
from padream.phases import Cycle
from padream.train import build_cycle as build_training_cycle

torch.set_num_threads(1)

TINY = dict(latent_dim=8, base_channels=4, batch_size=8, probe_epochs=2, epochs=1, device="cpu", precision="fp32")


def _tiny_config(condition: str = "pad", **overrides):
    return make_config(condition, **{**TINY, **overrides})


def _generated_arrays(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (N, 32, 32, 3) HWC images and int64 labels 0..9 (balanced when count % 10 == 0).

    Each class has its own mean colour, so the images carry some label information."""
    rng = np.random.default_rng(seed)
    palette = np.random.default_rng(1234).integers(30, 226, size=(10, 3))
    labels = np.arange(count, dtype=np.int64) % 10
    noise = rng.normal(0.0, 25.0, size=(count, 32, 32, 3))
    images = np.clip(palette[labels][:, None, None, :] + noise, 0, 255).astype(np.uint8)
    return images, labels


def _generated_set(count: int, seed: int = 0) -> ImageSet:
    images, labels = _generated_arrays(count, seed)
    return ImageSet(torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))),
                    torch.from_numpy(labels), f"generated[{count}, seed {seed}]")


def _build_cycle(config, seed: int = 0) -> Cycle:
    return build_training_cycle(config.replace(seed=seed), torch.device("cpu"), contextlib.nullcontext)


def _write_npz_dataset(root: Path, name: str = "cifar10", train: int = 200, test: int = 100) -> Path:
    folder = Path(root) / name
    folder.mkdir(parents=True, exist_ok=True)
    for split, count, seed in (("train", train, 0), ("test", test, 1)):
        images, labels = _generated_arrays(count, seed)
        np.savez(folder / f"{split}.npz", images=images, labels=labels)
    return Path(root)


@pytest.fixture
def tiny_config():
    """Factory: make_config(condition, latent_dim=8, base_channels=4, batch_size=8, ...) on CPU/fp32."""
    return _tiny_config


@pytest.fixture
def config():
    return _tiny_config("pad")


@pytest.fixture
def generated_set():
    """Factory: a generated ImageSet of `count` images."""
    return _generated_set


@pytest.fixture(scope="session")
def image_sets() -> tuple[ImageSet, ImageSet]:
    """A small (train, test) pair: 200 and 100 generated images."""
    return _generated_set(200, seed=0), _generated_set(100, seed=1)


@pytest.fixture
def build_cycle():
    """Factory: a Cycle built by hand from a config (tiny nets, Adam, empty hippocampus, nullcontext)."""
    return _build_cycle


@pytest.fixture
def batch():
    """Factory: `count` generated images as a float batch in [-1, 1]."""
    def make(count: int = 8, seed: int = 0) -> torch.Tensor:
        return to_unit_range(_generated_set(count, seed).images)
    return make


@pytest.fixture
def npz_root(tmp_path) -> Path:
    """A data root holding cifar10/{train,test}.npz with 200 and 100 generated images."""
    return _write_npz_dataset(tmp_path / "data")


@pytest.fixture(scope="session")
def write_npz_dataset():
    return _write_npz_dataset
