"""Latent-space organisation (Fig. 6e, f): how close same-class and occluded/clean latents lie, relative
to different-class ones.

Absolute distances depend on the latent scale, which differs between conditions (and the KL term
pulls it towards 1), so the figure compares ratios: intra-class / inter-class distance (semantic
clustering, REM's effect) and clean-occluded / inter-class distance (invariance to occlusion, NREM's).
Pairs follow Methods, 'Latent space organization metrics': 1000 same-class pairs per class
(averaged over classes), 10,000 different-class pairs, 10,000 image/own-occluded-version pairs at
30% occlusion. An item is never paired with itself, which would add zero distances to the intra mean.
"""

from __future__ import annotations

import torch

from padream.eval.linear_probe import encode_images
from padream.occlusion import occlude

INTRA_PAIRS_PER_CLASS = 1000
INTER_PAIRS = 10_000
CLEAN_OCCLUDED_PAIRS = 10_000
OCCLUSION_PROBABILITY = 0.3
SQUARE_SIZE = 4
KEYS = ("distance/intra", "distance/inter", "distance/intra_inter_ratio", "distance/clean_occluded",
        "distance/clean_occluded_inter_ratio", "distance/intra_pairs_per_class", "distance/inter_pairs",
        "distance/clean_occluded_pairs", "distance/occlusion_probability", "distance/occlusion_size")


def _distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.linalg.vector_norm(a.double() - b.double(), dim=1)


def intra_class_distance(latents: torch.Tensor, labels: torch.Tensor, generator: torch.Generator,
                         pairs_per_class: int = INTRA_PAIRS_PER_CLASS) -> float:
    """Mean over classes of the mean distance of `pairs_per_class` random pairs of distinct items of a class."""
    labels = labels.cpu()
    means = []
    for label in torch.unique(labels):
        members = torch.nonzero(labels == label).flatten()
        count = members.shape[0]
        if count < 2:
            raise ValueError(f"class {int(label)} has {count} item(s); a same-class pair needs two")
        first = torch.randint(0, count, (pairs_per_class,), generator=generator)
        # Draw the partner from the other count - 1 items: skip over `first` itself.
        second = torch.randint(0, count - 1, (pairs_per_class,), generator=generator)
        second = second + (second >= first).long()
        i, j = members[first].to(latents.device), members[second].to(latents.device)
        means.append(_distances(latents[i], latents[j]).mean())
    return float(torch.stack(means).mean())


def inter_class_distance(latents: torch.Tensor, labels: torch.Tensor, generator: torch.Generator,
                         pairs: int = INTER_PAIRS) -> float:
    """Mean distance of `pairs` random pairs of items with different labels (uniform over such pairs)."""
    labels = labels.cpu()
    if torch.unique(labels).shape[0] < 2:
        raise ValueError("an inter-class distance needs at least two classes")
    n = labels.shape[0]
    chosen_i, chosen_j, found = [], [], 0
    while found < pairs:  # rejection sampling: keep the pairs whose labels differ
        i = torch.randint(0, n, (2 * (pairs - found) + 16,), generator=generator)
        j = torch.randint(0, n, (i.shape[0],), generator=generator)
        keep = labels[i] != labels[j]
        chosen_i.append(i[keep])
        chosen_j.append(j[keep])
        found += int(keep.sum())
    i = torch.cat(chosen_i)[:pairs].to(latents.device)
    j = torch.cat(chosen_j)[:pairs].to(latents.device)
    return float(_distances(latents[i], latents[j]).mean())


def clean_occluded_distance(clean_latents: torch.Tensor, occluded_latents: torch.Tensor) -> float:
    """Mean distance between each item's clean latent and its occluded version's (rows pair up)."""
    if clean_latents.shape != occluded_latents.shape or clean_latents.shape[0] == 0:
        raise ValueError(f"clean and occluded latents must pair up row by row, got shapes "
                         f"{tuple(clean_latents.shape)} and {tuple(occluded_latents.shape)}")
    return float(_distances(clean_latents, occluded_latents).mean())


def distance_ratios(latents: torch.Tensor, labels: torch.Tensor, clean_latents: torch.Tensor,
                    occluded_latents: torch.Tensor, generator: torch.Generator,
                    intra_pairs_per_class: int = INTRA_PAIRS_PER_CLASS, inter_pairs: int = INTER_PAIRS) -> dict:
    """The Fig. 6e,f numbers from latents: class structure from (latents, labels), invariance from
    row-paired (clean_latents, occluded_latents). Occlusion keys are left to the caller."""
    intra = intra_class_distance(latents, labels, generator, intra_pairs_per_class)
    inter = inter_class_distance(latents, labels, generator, inter_pairs)
    clean_occluded = clean_occluded_distance(clean_latents, occluded_latents)
    return {
        "distance/intra": intra,
        "distance/inter": inter,
        "distance/intra_inter_ratio": intra / inter,
        "distance/clean_occluded": clean_occluded,
        "distance/clean_occluded_inter_ratio": clean_occluded / inter,
        "distance/intra_pairs_per_class": intra_pairs_per_class,
        "distance/inter_pairs": inter_pairs,
        "distance/clean_occluded_pairs": int(clean_latents.shape[0]),
    }


def latent_distances(encoder: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, device: torch.device,
                     generator: torch.Generator, autocast=None, latents: torch.Tensor | None = None,
                     intra_pairs_per_class: int = INTRA_PAIRS_PER_CLASS, inter_pairs: int = INTER_PAIRS,
                     clean_occluded_pairs: int = CLEAN_OCCLUDED_PAIRS,
                     probability: float = OCCLUSION_PROBABILITY, size: int = SQUARE_SIZE) -> dict:
    """Encode uint8 `images` (or reuse their `latents`) and compute the distance ratios.

    The clean/occluded pairs are `clean_occluded_pairs` distinct images (all of them when there are
    fewer), each with its own mask; only those are encoded again, occluded.
    """
    if latents is None:
        latents = encode_images(encoder, images, device, autocast)
    labels = labels.to(latents.device)
    count = min(clean_occluded_pairs, images.shape[0])
    index = torch.randperm(images.shape[0], generator=generator)[:count]
    occluded = encode_images(encoder, images[index.to(images.device)], device, autocast,
                             transform=lambda batch: occlude(batch, probability, size, generator, per_image=True))
    result = distance_ratios(latents, labels, latents[index.to(latents.device)], occluded, generator,
                             intra_pairs_per_class=intra_pairs_per_class, inter_pairs=inter_pairs)
    return {**result, "distance/occlusion_probability": probability, "distance/occlusion_size": size}
