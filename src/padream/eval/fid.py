"""Fréchet inception distance of NREM and REM dreams to training images (Fig. 3d).

FID numbers are only comparable when computed the standard way: the TensorFlow Inception-v3 graph
ported by pytorch-fid (its FID-specific blocks and ``pt_inception-2015-12-05`` weights, not
torchvision's ImageNet weights), 2048-d pool3 features of 8-bit images resized bilinearly to 299x299,
and enough samples for a full-rank covariance. So: the weights come from a local file only (no silent
download, no fallback to other weights), images reach the network as uint8 and are converted to its
input range in exactly one place (``to_inception_input``), generated images are quantised to 8 bits
like saved PNGs, and the sample count is part of the result. The Fréchet distance itself follows
pytorch-fid, including its fallback for a near-singular covariance product.
"""

from __future__ import annotations

import os
import warnings
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import linalg

from padream.config import ConfigError
from padream.data import to_unit_range
from padream.memory import Hippocampus

WEIGHTS_ENV = "PADREAM_FID_WEIGHTS"
WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{WEIGHTS_FILE}"
INPUT_SIZE = 299
FEATURE_DIM = 2048
SAMPLES = 10_000  # Methods: "10,000 pairs of data samples and generated images"
KEYS = ("fid/nrem", "fid/rem", "fid/samples", "fid/feature_dim", "fid/feature_network")


class FIDWeightsError(FileNotFoundError):
    """The Inception weights file is not where it was said to be (or nowhere was said)."""


# ---------------------------------------------------------------------------------------------
# Closed-form part: statistics and the distance between two Gaussians.

def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """|mu1 - mu2|^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2)).

    As pytorch-fid: when the square root of the product is not finite (a near-singular product),
    eps * I is added to both covariances; an imaginary part above 1e-3 on the diagonal is an error,
    a smaller one is numerical noise and dropped.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, dtype=np.float64)), np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.shape[0],) * 2:
        raise ValueError(f"mismatched statistics: means {mu1.shape} and {mu2.shape}, "
                         f"covariances {sigma1.shape} and {sigma2.shape}")
    diff = mu1 - mu2
    covmean = _sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        warnings.warn(f"FID: singular covariance product; adding {eps} to the diagonal of both covariances",
                      RuntimeWarning, stacklevel=2)
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = _sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"FID: imaginary component {np.max(np.abs(covmean.imag))} in the covariance "
                             f"square root")
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def _sqrtm(matrix: np.ndarray) -> np.ndarray:
    # Silences scipy's "matrix is singular" warning (pytorch-fid's disp=False): frechet_distance checks the result.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        return linalg.sqrtm(matrix)


def feature_statistics(features: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (ddof 1) of (N, D) features, in float64.

    Refuses (ValueError) N <= D: the covariance would be singular, and the FID it gives is biased by
    the sample size rather than measuring the images. Use more samples or lower-dimensional features.
    """
    if isinstance(features, torch.Tensor):
        features = features.detach().cpu().double().numpy()  # detach: statistics are numbers, not part of a graph
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2:
        raise ValueError(f"features must be (N, D), got shape {features.shape}")
    count, dim = features.shape
    if count <= dim:
        raise ValueError(f"FID statistics need more samples than feature dimensions: got {count} samples of "
                         f"{dim}-d features (the covariance would be singular); use at least {dim + 1}, "
                         f"and 10,000 for numbers comparable with the paper")
    return features.mean(axis=0), np.cov(features, rowvar=False)


# ---------------------------------------------------------------------------------------------
# The feature network: pytorch-fid's Inception-v3, weights from a local file.

def to_inception_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> float (N, 3, 299, 299) in [-1, 1], as pytorch-fid feeds its network.

    The one place images are converted for the Inception network: scale to [0, 1], resize bilinearly
    (align_corners=False), then map to [-1, 1], in pytorch-fid's order.
    """
    if images.dtype != torch.uint8:
        raise TypeError(f"FID features take uint8 images (quantise generated ones first), got {images.dtype}")
    x = images.float() / 255.0
    x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
    return 2 * x - 1


def quantise(images: torch.Tensor) -> torch.Tensor:
    """Generator output in [-1, 1] -> uint8, the rounding torchvision's save_image applies to a PNG."""
    return images.float().add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8)


def resolve_weights(weights: str | os.PathLike | None = None) -> Path:
    """The weights file: the argument, else $PADREAM_FID_WEIGHTS; a clear error when it is missing."""
    source = "the given path" if weights else f"${WEIGHTS_ENV}"
    weights = weights or os.environ.get(WEIGHTS_ENV)
    how = (f"Download {WEIGHTS_FILE} (pytorch-fid's FID Inception weights, {WEIGHTS_URL}) on a machine with "
           f"internet access, copy it here, and pass its path with --fid-weights or set {WEIGHTS_ENV}=/path/to/"
           f"{WEIGHTS_FILE}. Nothing is downloaded automatically.")
    if not weights:
        raise FIDWeightsError(f"FID needs the Inception weights file, and {WEIGHTS_ENV} is not set. {how}")
    path = Path(weights).expanduser()
    if not path.is_file():
        raise FIDWeightsError(f"FID Inception weights not found at {path} ({source}). {how}")
    return path


class InceptionFeatures(torch.nn.Module):
    """uint8 images -> (N, 2048) pool3 features of the FID Inception-v3 (pytorch-fid's blocks 0-3)."""

    def __init__(self, inception: torch.nn.Module) -> None:
        super().__init__()
        i = inception
        self.blocks = torch.nn.Sequential(
            i.Conv2d_1a_3x3, i.Conv2d_2a_3x3, i.Conv2d_2b_3x3, torch.nn.MaxPool2d(kernel_size=3, stride=2),
            i.Conv2d_3b_1x1, i.Conv2d_4a_3x3, torch.nn.MaxPool2d(kernel_size=3, stride=2),
            i.Mixed_5b, i.Mixed_5c, i.Mixed_5d, i.Mixed_6a, i.Mixed_6b, i.Mixed_6c, i.Mixed_6d, i.Mixed_6e,
            i.Mixed_7a, i.Mixed_7b, i.Mixed_7c, torch.nn.AdaptiveAvgPool2d(output_size=(1, 1)))
        self.requires_grad_(False)
        self.eval()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.blocks(to_inception_input(images)).flatten(1)


def build_fid_inception() -> torch.nn.Module:
    """The FID Inception-v3 architecture (torchvision's, with pytorch-fid's patched blocks), unweighted."""
    try:
        from pytorch_fid.inception import FIDInceptionA, FIDInceptionC, FIDInceptionE_1, FIDInceptionE_2
    except ImportError as error:
        raise ConfigError("FID needs the pytorch-fid package: pip install 'padream[fid]'") from error
    from torchvision.models import inception_v3

    inception = inception_v3(weights=None, aux_logits=False, num_classes=1008, init_weights=False)
    inception.Mixed_5b = FIDInceptionA(192, pool_features=32)
    inception.Mixed_5c = FIDInceptionA(256, pool_features=64)
    inception.Mixed_5d = FIDInceptionA(288, pool_features=64)
    inception.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
    inception.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
    inception.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
    inception.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
    inception.Mixed_7b = FIDInceptionE_1(1280)
    inception.Mixed_7c = FIDInceptionE_2(2048)
    return inception


def load_fid_inception(weights: str | os.PathLike | None = None) -> InceptionFeatures:
    """The standard FID feature network with weights read from a local file (see resolve_weights)."""
    path = resolve_weights(weights)
    inception = build_fid_inception()
    state = torch.load(path, map_location="cpu", weights_only=True)
    try:
        inception.load_state_dict(state)
    except RuntimeError as error:
        raise FIDWeightsError(f"{path} does not hold the FID Inception weights ({WEIGHTS_FILE}): "
                              f"{str(error).splitlines()[0]}") from error
    return InceptionFeatures(inception)


# ---------------------------------------------------------------------------------------------
# Dreams vs training images.

@torch.no_grad()  # features and dreams are measured, not trained
def image_features(network: torch.nn.Module, images: torch.Tensor, device: torch.device,
                   batch_size: int = 200) -> torch.Tensor:
    """(N, D) float32 CPU features of uint8 images, in batches, the network in eval mode."""
    was_training = network.training
    network.eval()
    try:
        chunks = [network(images[start:start + batch_size].to(device)).float().cpu()
                  for start in range(0, images.shape[0], batch_size)]
    finally:
        network.train(was_training)
    return torch.cat(chunks).flatten(1)


@torch.no_grad()  # dreams are measured, not trained
def dream_fid(encoder: torch.nn.Module, generator: torch.nn.Module, train_images: torch.Tensor,
              feature_network: torch.nn.Module, device: torch.device, rng: torch.Generator,
              samples: int = SAMPLES, memory_mix: float = 0.5, noise_mix: float = 0.5, batch_size: int = 200,
              autocast=None, feature_network_name: str | None = None) -> dict:
    """FID of NREM dreams G(z) and REM dreams G(z_mix) against the training images they come from.

    `samples` training images are drawn without replacement from `rng`; each gives one NREM dream
    (from its own latent) and one REM dream (its latent mixed, as in training, with the latent of the
    image before it in the draw and with N(0, I) noise from `rng`). Dreams are unoccluded.
    """
    if samples > train_images.shape[0]:
        raise ValueError(f"FID with {samples} samples needs as many training images, got {train_images.shape[0]}")
    autocast = autocast or nullcontext
    index = torch.randperm(train_images.shape[0], generator=rng)[:samples]
    chosen = train_images[index.to(train_images.device)]
    modes = encoder.training, generator.training
    encoder.eval()
    generator.eval()
    nrem, rem = [], []
    try:
        for start in range(0, samples, batch_size):
            with autocast():
                latents = encoder.encode(to_unit_range(chosen[start:start + batch_size].to(device))).float()
            memory = Hippocampus()
            memory.store(latents.roll(1, dims=0))  # the "previous day": other images of the draw
            memory.store(latents)
            mixed = memory.mix(memory_mix, noise_mix, rng)
            with autocast():
                nrem.append(quantise(generator(latents).float()).cpu())
                rem.append(quantise(generator(mixed).float()).cpu())
    finally:
        encoder.train(modes[0])
        generator.train(modes[1])
    real_stats = feature_statistics(image_features(feature_network, chosen, device, batch_size))
    nrem_stats = feature_statistics(image_features(feature_network, torch.cat(nrem), device, batch_size))
    rem_stats = feature_statistics(image_features(feature_network, torch.cat(rem), device, batch_size))
    return {
        "fid/nrem": frechet_distance(*nrem_stats, *real_stats),
        "fid/rem": frechet_distance(*rem_stats, *real_stats),
        "fid/samples": samples,
        "fid/feature_dim": int(real_stats[0].shape[0]),
        "fid/feature_network": feature_network_name or type(feature_network).__name__,
    }
