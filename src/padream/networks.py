"""Encoder (latent head + external/internal discriminator head) and generator, as in the paper's Fig. 8.

Both heads read the trunk's third layer; the discriminator returns a logit, the sigmoid is applied
only where a probability is read out, so losses can use the numerically stable BCE-with-logits.

Layers whose kernel covers the whole feature map (the two 4x4 heads on a 4x4 map, the generator's
first 1x1 -> 4x4 transposed convolution) are dense layers in disguise. They keep their convolution
parameters (same shapes and state_dict as the paper's architecture) but are computed as one matrix
multiply, which runs several times faster than a convolution of that shape on CPUs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

IMAGE_CHANNELS = 3
LEAKY_SLOPE = 0.2


class Encoder(nn.Module):
    """x (N, 3, 32, 32) in [-1, 1] -> latent z (N, latent_dim) and discriminator logit (N,)."""

    def __init__(self, latent_dim: int = 256, base_channels: int = 64) -> None:
        super().__init__()
        c = base_channels
        self.trunk = nn.Sequential(
            nn.Conv2d(IMAGE_CHANNELS, c, 4, 2, 1), nn.LeakyReLU(LEAKY_SLOPE),   # 16x16
            nn.Conv2d(c, 2 * c, 4, 2, 1), nn.LeakyReLU(LEAKY_SLOPE),            # 8x8
            nn.Conv2d(2 * c, 4 * c, 4, 2, 1), nn.LeakyReLU(LEAKY_SLOPE),        # 4x4
        )
        self.latent_head = nn.Conv2d(4 * c, latent_dim, 4, 1, 0)               # 1x1, no nonlinearity
        self.discriminator_head = nn.Conv2d(4 * c, 1, 4, 1, 0)                 # 1x1 logit
        self.latent_dim = latent_dim

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.trunk(x).flatten(1)
        return _as_dense(self.latent_head, features), _as_dense(self.discriminator_head, features).flatten()

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Latent only: skips the discriminator head (NREM, read-out)."""
        return _as_dense(self.latent_head, self.trunk(x).flatten(1))

    def discriminate(self, x: torch.Tensor) -> torch.Tensor:
        """Discriminator logit only: skips the latent head (REM)."""
        return _as_dense(self.discriminator_head, self.trunk(x).flatten(1)).flatten()


def _as_dense(head: nn.Conv2d, features: torch.Tensor) -> torch.Tensor:
    """A 4x4 valid convolution on a 4x4 map, as the matrix multiply it is: (N, C*16) -> (N, out)."""
    return F.linear(features, head.weight.flatten(1), head.bias)


class Generator(nn.Module):
    """z (N, latent_dim) -> image (N, 3, 32, 32) in (-1, 1)."""

    def __init__(self, latent_dim: int = 256, base_channels: int = 64) -> None:
        super().__init__()
        c = base_channels
        self.project = nn.ConvTranspose2d(latent_dim, 4 * c, 4, 1, 0)                   # 1x1 -> 4x4
        self.net = nn.Sequential(
            nn.LeakyReLU(LEAKY_SLOPE),
            nn.ConvTranspose2d(4 * c, 2 * c, 4, 2, 1), nn.LeakyReLU(LEAKY_SLOPE),       # 8x8
            nn.ConvTranspose2d(2 * c, c, 4, 2, 1), nn.LeakyReLU(LEAKY_SLOPE),           # 16x16
            nn.ConvTranspose2d(c, IMAGE_CHANNELS, 4, 2, 1), nn.Tanh(),                   # 32x32
        )
        self.latent_dim = latent_dim

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        # The 4x4 transposed convolution of a 1x1 input, as a matrix multiply: (N, latent) -> (N, 4c, 4, 4).
        weight = self.project.weight  # (latent, 4c, 4, 4)
        h = F.linear(z.flatten(1), weight.flatten(1).T, self.project.bias.repeat_interleave(16))
        return self.net(h.view(z.shape[0], weight.shape[1], 4, 4))


def build_networks(latent_dim: int, base_channels: int, generator: torch.Generator) -> tuple[Encoder, Generator]:
    """Both networks with DCGAN initialisation (conv weights ~ N(0, 0.02), biases 0), drawn from an
    explicit RNG so a seed fixes them whatever else ran before."""
    encoder = Encoder(latent_dim, base_channels)
    decoder = Generator(latent_dim, base_channels)
    for net in (encoder, decoder):
        for module in net.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                with torch.no_grad():  # initialisation is not part of any graph
                    module.weight.normal_(0.0, 0.02, generator=generator)
                    if module.bias is not None:
                        module.bias.zero_()
    return encoder, decoder
