"""Linear separability (Methods, 'Training of linear readout'): a 256 -> 10 softmax layer on frozen latents.

The paper's read-out is mini-batch SGD (lr 0.2, batch 64, 20 epochs, last epoch reported). It runs
here on cached latent tensors with the closed-form softmax-cross-entropy gradient, so 15,000 tiny
steps cost about a second instead of an autograd round trip each. Accuracy is over the *whole* test
set: no batch is dropped.
"""

from __future__ import annotations

import math
from contextlib import contextmanager, nullcontext
from typing import Callable

import torch

from padream.data import NUM_CLASSES, ImageSet, to_unit_range


@torch.no_grad()  # read-out only: the encoder is frozen and no graph is needed
def encode_images(encoder: torch.nn.Module, images: torch.Tensor, device: torch.device,
                  autocast=None, batch_size: int = 1000,
                  transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """Latents (N, latent_dim) float32 on `device` for uint8 images, encoder in eval mode.

    `transform`, when given, perturbs each chunk after its conversion to [-1, 1] (e.g. occlusion);
    it is called on consecutive chunks in order, so a seeded transform gives the same result each time.
    """
    was_training = encoder.training
    encoder.eval()
    chunks = []
    try:
        for start in range(0, images.shape[0], batch_size):
            batch = to_unit_range(images[start:start + batch_size].to(device, non_blocking=True))
            if transform is not None:
                batch = transform(batch)
            with (autocast or nullcontext)():
                chunks.append(encoder.encode(batch).float())
    finally:
        encoder.train(was_training)
    return torch.cat(chunks)


def accuracy(weight: torch.Tensor, bias: torch.Tensor, latents: torch.Tensor, labels: torch.Tensor) -> float:
    predictions = (latents @ weight.T + bias).argmax(dim=1)
    return float((predictions == labels).float().mean())


@torch.no_grad()  # the gradient is written out in closed form below
def fit_linear_probe(train_latents: torch.Tensor, train_labels: torch.Tensor, generator: torch.Generator,
                     epochs: int = 20, lr: float = 0.2, batch_size: int = 64, num_classes: int = NUM_CLASSES,
                     on_epoch_end: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None,
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """The paper's read-out: mini-batch SGD on the mean cross-entropy. Returns the last epoch's
    (weight (num_classes, dim), bias); `on_epoch_end(epoch, weight, bias)` sees them after every epoch."""
    if train_latents.shape[0] == 0:
        raise ValueError("the linear read-out needs non-empty train and test latents")
    device = train_latents.device
    dim = train_latents.shape[1]
    bound = 1.0 / math.sqrt(dim)  # torch.nn.Linear's default initialisation
    weight = ((torch.rand((num_classes, dim), generator=generator) * 2 - 1) * bound).to(device)
    bias = ((torch.rand((num_classes,), generator=generator) * 2 - 1) * bound).to(device)
    one_hot = torch.nn.functional.one_hot(train_labels, num_classes).float()
    with single_thread():
        for epoch in range(epochs):
            _sgd_epoch(weight, bias, train_latents, one_hot, generator, lr, batch_size)
            if on_epoch_end is not None:
                on_epoch_end(epoch, weight, bias)
    return weight, bias


def fit_and_score_linear_probe(train_latents: torch.Tensor, train_labels: torch.Tensor,
                               test_latents: torch.Tensor, test_labels: torch.Tensor, generator: torch.Generator,
                               epochs: int = 20, lr: float = 0.2, batch_size: int = 64,
                               num_classes: int = NUM_CLASSES,
                               ) -> tuple[dict[str, float], torch.Tensor, torch.Tensor]:
    """train_linear_probe's result, and the read-out's final (weight, bias) for reuse (e.g. on occluded
    test images)."""
    if train_latents.shape[0] == 0 or test_latents.shape[0] == 0:
        raise ValueError("the linear read-out needs non-empty train and test latents")
    last_accuracies = []

    def record(epoch: int, weight: torch.Tensor, bias: torch.Tensor) -> None:
        if epoch >= epochs - 5:
            last_accuracies.append(accuracy(weight, bias, test_latents, test_labels))

    weight, bias = fit_linear_probe(train_latents, train_labels, generator, epochs=epochs, lr=lr,
                                    batch_size=batch_size, num_classes=num_classes, on_epoch_end=record)
    result = {
        "probe/train_acc": accuracy(weight, bias, train_latents, train_labels),
        "probe/test_acc": accuracy(weight, bias, test_latents, test_labels),
        "probe/test_acc_last5": sum(last_accuracies) / len(last_accuracies),
    }
    return result, weight, bias


def train_linear_probe(train_latents: torch.Tensor, train_labels: torch.Tensor,
                       test_latents: torch.Tensor, test_labels: torch.Tensor, generator: torch.Generator,
                       epochs: int = 20, lr: float = 0.2, batch_size: int = 64,
                       num_classes: int = NUM_CLASSES) -> dict[str, float]:
    """Mini-batch SGD on the mean cross-entropy; returns train/test accuracy of the final weights and
    the test accuracy after each of the last five epochs (`probe/test_acc_last5`)."""
    result, _, _ = fit_and_score_linear_probe(train_latents, train_labels, test_latents, test_labels, generator,
                                              epochs=epochs, lr=lr, batch_size=batch_size,
                                              num_classes=num_classes)
    return result


@contextmanager
def single_thread():
    """Run tiny CPU ops on one thread: for (64 x 256) matrices, waking a second OpenMP thread costs more
    than the arithmetic, and 20x more when the other core is busy (measured here)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _sgd_epoch(weight: torch.Tensor, bias: torch.Tensor, latents: torch.Tensor, targets: torch.Tensor,
               generator: torch.Generator, lr: float, batch_size: int) -> None:
    """One pass of mini-batch SGD on the mean cross-entropy, updating weight and bias in place."""
    # One gather per epoch; the batches below are then contiguous views, not per-step gathers.
    order = torch.randperm(latents.shape[0], generator=generator).to(latents.device)
    shuffled_latents, shuffled_targets = latents[order], targets[order]
    for start in range(0, latents.shape[0], batch_size):  # the last, smaller batch is kept
        z = shuffled_latents[start:start + batch_size]
        error = torch.addmm(bias, z, weight.T).softmax(dim=1).sub_(shuffled_targets[start:start + batch_size])
        step = lr / z.shape[0]  # gradient of the batch-mean cross-entropy
        weight.addmm_(error.T, z, alpha=-step)
        bias.add_(error.sum(dim=0), alpha=-step)


def linear_separability(encoder: torch.nn.Module, train: ImageSet, test: ImageSet, device: torch.device,
                        generator: torch.Generator, autocast=None, epochs: int = 20, lr: float = 0.2,
                        batch_size: int = 64) -> dict[str, float]:
    """Encode both splits with the frozen encoder and fit the paper's linear read-out."""
    train_latents = encode_images(encoder, train.images, device, autocast)
    test_latents = encode_images(encoder, test.images, device, autocast)
    return train_linear_probe(train_latents, train.labels.to(device), test_latents, test.labels.to(device),
                              generator, epochs=epochs, lr=lr, batch_size=batch_size)
