"""Square occlusion (paper, 'Image occlusion'): tile the image into s x s patches, zero each with probability p.

Vectorised: a Bernoulli grid of patches is drawn once and expanded to pixels with repeat_interleave,
so cost does not depend on the square size. Randomness comes only from the passed-in generator
(on the CPU, so the same seed gives the same masks on every device).
"""

from __future__ import annotations

import math

import torch


def square_mask(batch: int, height: int, width: int, probability: float, size: int,
                generator: torch.Generator, per_image: bool = True) -> torch.Tensor:
    """Boolean keep-mask (batch or 1, 1, H, W): False where a square is occluded.

    With per_image=False one mask is drawn and shared by the whole batch (shape (1, 1, H, W)),
    as in PAD's NREM phase; with per_image=True each image gets its own (evaluation).
    """
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"occlusion probability must lie in [0, 1], got {probability}")
    if size < 1:
        raise ValueError(f"occlusion square size must be >= 1, got {size}")
    rows, cols = math.ceil(height / size), math.ceil(width / size)
    count = batch if per_image else 1
    occluded = torch.rand((count, 1, rows, cols), generator=generator) < probability
    pixels = occluded.repeat_interleave(size, dim=2).repeat_interleave(size, dim=3)
    return ~pixels[:, :, :height, :width]


def occlude(images: torch.Tensor, probability: float, size: int, generator: torch.Generator,
            per_image: bool = True, fill: float = 0.0) -> torch.Tensor:
    """Images with random squares set to `fill` (0 is mid-gray for images scaled to [-1, 1])."""
    n, _, h, w = images.shape
    keep = square_mask(n, h, w, probability, size, generator, per_image).to(images.device)
    return torch.where(keep, images, torch.as_tensor(fill, dtype=images.dtype, device=images.device))


def random_occlusion_parameters(generator: torch.Generator, max_probability: float = 1.0,
                                max_size: int = 8) -> tuple[float, int]:
    """NREM's per-batch draw: probability ~ U(0, max_probability), size ~ U{1, ..., max_size}."""
    probability = float(torch.rand((), generator=generator)) * max_probability
    size = int(torch.randint(1, max_size + 1, (), generator=generator))
    return probability, size
