"""Fig. 3a-c: what the model sees awake and what it dreams, from a fixed batch and a fixed noise seed.

Fixed inputs make the pictures of different checkpoints (epoch 1 vs epoch 50) and conditions
comparable image by image: the same Wake batch, the same older memories, the same cortical noise.
REM dreams are built with padream.memory.Hippocampus.mix, the rule training uses, so the mixing
constants are the run's own and live in one place.

NREM dreams are shown *unoccluded* by default: G(z) is what the generator makes of a single memory,
and the occlusion squares NREM then applies are the same grey patches whatever was learned. Pass
``nrem_occlusion=(probability, size)`` to show them as the encoder receives them in NREM (one mask
for the whole batch, as in training).
"""

from __future__ import annotations

import io
import math
from contextlib import nullcontext
from pathlib import Path

import torch
from torchvision.utils import make_grid, save_image

from padream.checkpoint import atomic_write_bytes
from padream.data import to_unit_range
from padream.memory import Hippocampus
from padream.occlusion import occlude
from padream.rng import generator_for

ROWS = ("wake", "nrem", "rem")
DREAM_IMAGES = 64
DREAMS_SEED = 0  # the same inputs and noise for every run, so pictures compare across runs and epochs
PADDING = 2
KEYS = ("dreams/path", "dreams/rows", "dreams/images", "dreams/nrow", "dreams/size", "dreams/memory_mix",
        "dreams/noise_mix", "dreams/nrem_occlusion")


@torch.no_grad()  # dreams are only looked at: no graph through encoder or generator
def dream_batches(encoder: torch.nn.Module, generator: torch.nn.Module, wake_images: torch.Tensor,
                  old_images: torch.Tensor, noise: torch.Generator, device: torch.device,
                  memory_mix: float = 0.5, noise_mix: float = 0.5,
                  nrem_occlusion: tuple[float, int] | None = None, autocast=None) -> dict[str, torch.Tensor]:
    """Wake inputs, NREM dreams G(z) and REM dreams G(z_mix) in [-1, 1], plus the latents behind them.

    z are the latents of `wake_images` (uint8), z_old those of `old_images` (the previous day's batch);
    REM noise, then the NREM mask if any, are drawn from `noise`.
    """
    autocast = autocast or nullcontext
    modes = encoder.training, generator.training
    encoder.eval()
    generator.eval()
    try:
        wake = to_unit_range(wake_images.to(device))
        with autocast():
            latents = encoder.encode(wake).float()
            old_latents = encoder.encode(to_unit_range(old_images.to(device))).float()
        memory = Hippocampus()
        memory.store(old_latents)
        memory.store(latents)
        mixed = memory.mix(memory_mix, noise_mix, noise)
        with autocast():
            nrem = generator(memory.replay()).float()
            rem = generator(mixed).float()
        if nrem_occlusion is not None:
            probability, size = nrem_occlusion
            nrem = occlude(nrem, probability, size, noise, per_image=False)
    finally:
        encoder.train(modes[0])
        generator.train(modes[1])
    return {"wake": wake, "nrem": nrem, "rem": rem, "latents": latents, "old_latents": old_latents,
            "mixed_latents": mixed}


def grid_size(images: int, nrow: int) -> tuple[int, int]:
    """(width, height) in pixels of the PNG `save_dream_grid` writes for batches of `images` 32x32 images."""
    columns, rows = min(nrow, images), math.ceil(images / nrow)
    width = columns * (32 + PADDING) + PADDING
    return width, len(ROWS) * (rows * (32 + PADDING) + PADDING)


def save_dream_grid(batches: dict[str, torch.Tensor], path: str | Path, nrow: int = 8) -> tuple[int, int]:
    """One PNG: the Wake grid on top, NREM below it, REM at the bottom; returns its (width, height)."""
    # detach: a picture, whatever graph the batches came with; [-1, 1] -> [0, 1] as save_image expects.
    grids = [make_grid(batches[row].detach().float().cpu().add(1).div(2).clamp(0, 1), nrow=nrow, padding=PADDING)
             for row in ROWS]
    picture = torch.cat(grids, dim=1)
    buffer = io.BytesIO()
    save_image(picture, buffer, format="png")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buffer.getvalue())
    return picture.shape[2], picture.shape[1]


def dream_grids(encoder: torch.nn.Module, generator: torch.nn.Module, wake_images: torch.Tensor,
                old_images: torch.Tensor, path: str | Path, noise: torch.Generator, device: torch.device,
                memory_mix: float = 0.5, noise_mix: float = 0.5, nrem_occlusion: tuple[float, int] | None = None,
                nrow: int = 8, autocast=None) -> dict:
    """Compute the three batches and save them as one PNG at `path`; returns what was drawn."""
    batches = dream_batches(encoder, generator, wake_images, old_images, noise, device, memory_mix, noise_mix,
                            nrem_occlusion, autocast)
    width, height = save_dream_grid(batches, path, nrow)
    return {"dreams/path": str(path), "dreams/rows": list(ROWS), "dreams/images": int(wake_images.shape[0]),
            "dreams/nrow": nrow, "dreams/size": [width, height], "dreams/memory_mix": memory_mix,
            "dreams/noise_mix": noise_mix,
            "dreams/nrem_occlusion": None if nrem_occlusion is None else list(nrem_occlusion)}


def fixed_dream_inputs(images: torch.Tensor, count: int = DREAM_IMAGES) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed Wake batch and older memories' images every dream picture is drawn from."""
    count = min(count, images.shape[0] // 2)
    order = torch.randperm(images.shape[0], generator=generator_for(DREAMS_SEED, "eval", "dreams", "images"))
    return images[order[:count].to(images.device)], images[order[count:2 * count].to(images.device)]


def fixed_dream_noise() -> torch.Generator:
    return generator_for(DREAMS_SEED, "eval", "dreams", "noise")
