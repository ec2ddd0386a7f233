"""Encoders with a known answer: the label is written into one pixel and read back by `encode`."""

from __future__ import annotations

import torch
from torch import nn

LEVEL = 20  # label k is stored as the value 20 k + 10 in pixel (0, 0) of the red channel


def images_with_labels(labels: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """uint8 (N, 3, 32, 32) noise images whose red (0, 0) pixel encodes the label."""
    images = torch.randint(0, 256, (labels.shape[0], 3, 32, 32), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(seed))
    images[:, 0, 0, 0] = (LEVEL * labels + LEVEL // 2).to(torch.uint8)
    return images


class PixelLabelEncoder(nn.Module):
    """z = 3 * one_hot(label read from pixel (0, 0)); an all-zero (mid-gray) image reads as class 6."""

    def __init__(self, extra_dims: int = 0) -> None:
        super().__init__()
        self.extra_dims = extra_dims
        self.scale = nn.Parameter(torch.tensor(3.0))  # a parameter, so the module has a device and a mode

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        level = ((x[:, 0, 0, 0] + 1.0) * 127.5 / LEVEL).floor().clamp(0, 9).long()
        z = self.scale * nn.functional.one_hot(level, 10).float()
        return torch.cat([z, torch.zeros(x.shape[0], self.extra_dims)], dim=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encode(x), torch.zeros(x.shape[0])


ZERO_IMAGE_CLASS = 6
