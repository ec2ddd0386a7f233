"""Fig. 6b-d: latents of four classes on their first two principal components, with occluded versions.

The components are fitted on clean latents only and the 30%-occluded versions are projected with
them, so an occluded point lands where its latent lies relative to the clean clusters: near its own
clean point for an occlusion-invariant encoder, elsewhere for one that is not. The result is plain
lists (a subset of points per class keeps the JSON small) that a figure can draw without the model.
"""

from __future__ import annotations

import torch

from padream.eval.linear_probe import encode_images
from padream.occlusion import occlude

CLASSES = (0, 1, 2, 3)  # the paper shows four categories (SVHN '0'-'3')
POINTS_PER_CLASS = 250
COMPONENTS = 2
OCCLUSION_PROBABILITY = 0.3
SQUARE_SIZE = 4
KEYS = ("pca/points", "pca/labels", "pca/occluded", "pca/index", "pca/explained_variance_ratio", "pca/classes",
        "pca/fit_points", "pca/occlusion_probability", "pca/occlusion_size")


def fit_pca(x: torch.Tensor, components: int = COMPONENTS) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mean (D,), components (k, D), explained variance ratio (k,)) of the rows of x, in float64.

    Each component's sign is fixed so that its largest-magnitude loading is positive, so the same data
    always gives the same picture.
    """
    x = x.double()
    if x.shape[0] < 2:
        raise ValueError("PCA needs at least two points")
    if not 1 <= components <= x.shape[1]:
        raise ValueError(f"components must lie in 1..{x.shape[1]}, got {components}")
    mean = x.mean(dim=0)
    centred = x - mean
    covariance = centred.T @ centred / (x.shape[0] - 1)
    variances, vectors = torch.linalg.eigh(covariance)  # ascending
    variances, vectors = variances.flip(0).clamp_min(0.0), vectors.flip(1)
    top = vectors[:, :components].T.contiguous()
    signs = torch.sign(top.gather(1, top.abs().argmax(dim=1, keepdim=True)))
    top = top * torch.where(signs == 0, torch.ones_like(signs), signs)
    total = variances.sum()
    ratio = variances[:components] / total if total > 0 else torch.zeros(components, dtype=torch.float64)
    return mean, top, ratio


def project(x: torch.Tensor, mean: torch.Tensor, components: torch.Tensor) -> torch.Tensor:
    return (x.double() - mean) @ components.T


def select_points(labels: torch.Tensor, classes: tuple[int, ...], per_class: int,
                  generator: torch.Generator) -> torch.Tensor:
    """Up to `per_class` random item indices of each class in `classes`, class after class."""
    labels = labels.cpu()
    chosen = []
    for label in classes:
        members = torch.nonzero(labels == label).flatten()
        if members.shape[0] == 0:
            raise ValueError(f"class {label} has no items to show")
        chosen.append(members[torch.randperm(members.shape[0], generator=generator)[:per_class]])
    return torch.cat(chosen)


def pca_projection(fit_latents: torch.Tensor, clean_latents: torch.Tensor, occluded_latents: torch.Tensor,
                   labels: torch.Tensor, components: int = COMPONENTS) -> dict:
    """Fit on `fit_latents`; project the shown points, clean first, then their row-paired occluded versions."""
    if clean_latents.shape != occluded_latents.shape or clean_latents.shape[0] != labels.shape[0]:
        raise ValueError("clean latents, occluded latents and labels must pair up row by row")
    mean, top, ratio = fit_pca(fit_latents, components)
    points = torch.cat([project(clean_latents, mean, top), project(occluded_latents, mean, top)])
    count = labels.shape[0]
    return {
        "pca/points": points.cpu().tolist(),
        "pca/labels": [int(v) for v in labels.cpu()] * 2,
        "pca/occluded": [False] * count + [True] * count,
        "pca/explained_variance_ratio": ratio.cpu().tolist(),
        "pca/fit_points": int(fit_latents.shape[0]),
    }


def latent_pca(encoder: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, device: torch.device,
               generator: torch.Generator, autocast=None, latents: torch.Tensor | None = None,
               classes: tuple[int, ...] = CLASSES, per_class: int = POINTS_PER_CLASS,
               probability: float = OCCLUSION_PROBABILITY, size: int = SQUARE_SIZE) -> dict:
    """PCA of the clean latents of all items of `classes`; `per_class` random items of each are shown,
    clean and occluded (a fresh mask per image). `latents` reuses an encoding of `images`."""
    if latents is None:
        latents = encode_images(encoder, images, device, autocast)
    labels = labels.cpu()
    in_classes = torch.isin(labels, torch.tensor(classes))
    shown = select_points(labels, classes, per_class, generator)
    occluded = encode_images(encoder, images[shown.to(images.device)], device, autocast,
                             transform=lambda batch: occlude(batch, probability, size, generator, per_image=True))
    result = pca_projection(latents[in_classes.to(latents.device)], latents[shown.to(latents.device)], occluded,
                            labels[shown])
    return {**result, "pca/index": shown.tolist() * 2, "pca/classes": list(classes),
            "pca/occlusion_probability": probability, "pca/occlusion_size": size}
