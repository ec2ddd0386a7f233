"""Robustness to occlusion (Fig. 5): a read-out trained on clean latents, tested on occluded images.

The read-out never sees an occluded image, so a drop in accuracy with occlusion measures how far the
encoder maps a partly hidden object away from where the clean one lies, i.e. out-of-distribution
generalisation of the representation, which is what NREM's perturbed dreams are meant to train.
Each test image gets its own mask (Methods: "random square occlusion masks on each sample"), size 4
as in the paper's figures, and accuracy is over the whole test set at every level.
"""

from __future__ import annotations

import torch

from padream.data import NUM_CLASSES, ImageSet
from padream.eval.linear_probe import accuracy, encode_images, fit_linear_probe
from padream.occlusion import occlude

PROBABILITIES = tuple(round(0.1 * i, 1) for i in range(11))
SQUARE_SIZE = 4
KEYS = ("occlusion/probabilities", "occlusion/test_acc", "occlusion/size")


def occlusion_accuracies(encoder: torch.nn.Module, weight: torch.Tensor, bias: torch.Tensor,
                         test_images: torch.Tensor, test_labels: torch.Tensor, device: torch.device,
                         generator: torch.Generator, autocast=None,
                         probabilities: tuple[float, ...] = PROBABILITIES, size: int = SQUARE_SIZE,
                         batch_size: int = 1000, clean_latents: torch.Tensor | None = None) -> dict:
    """Test accuracy of a fixed read-out (logits = z @ weight.T + bias) at each occlusion probability.

    `test_images` are uint8; masks are drawn per image from `generator`, level after level. Two levels
    need no encoding pass of their own: p = 0 leaves every image clean (so `clean_latents`, when given,
    are its latents), and p = 1 turns every image into the same blank one (one encoding, broadcast).
    """
    test_labels = test_labels.to(device)
    weight, bias = weight.to(device), bias.to(device)
    accuracies = []
    for probability in probabilities:
        def perturb(batch: torch.Tensor, p: float = float(probability)) -> torch.Tensor:
            return occlude(batch, p, size, generator, per_image=True)

        if probability == 0.0 and clean_latents is not None:
            latents = clean_latents.to(device)
        elif probability == 1.0:
            blank = encode_images(encoder, test_images[:1], device, autocast, transform=perturb)
            latents = blank.expand(test_images.shape[0], -1)
        else:
            latents = encode_images(encoder, test_images, device, autocast, batch_size=batch_size,
                                    transform=perturb)
        accuracies.append(accuracy(weight, bias, latents, test_labels))
    return {"occlusion/probabilities": [float(p) for p in probabilities], "occlusion/test_acc": accuracies,
            "occlusion/size": size}


def occlusion_robustness(encoder: torch.nn.Module, train: ImageSet, test: ImageSet, device: torch.device,
                         generator: torch.Generator, autocast=None, epochs: int = 20, lr: float = 0.2,
                         batch_size: int = 64, probabilities: tuple[float, ...] = PROBABILITIES,
                         size: int = SQUARE_SIZE, train_latents: torch.Tensor | None = None) -> dict:
    """Fit the paper's read-out on clean training latents, then test it at each occlusion level.

    `generator` first drives the read-out's SGD, then the masks. Pass `train_latents` to reuse an encoding.
    """
    if train_latents is None:
        train_latents = encode_images(encoder, train.images, device, autocast)
    weight, bias = fit_linear_probe(train_latents, train.labels.to(device), generator, epochs=epochs, lr=lr,
                                    batch_size=batch_size, num_classes=NUM_CLASSES)
    return occlusion_accuracies(encoder, weight, bias, test.images, test.labels, device, generator, autocast,
                                probabilities=probabilities, size=size)
