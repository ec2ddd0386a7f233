"""Wake, NREM and REM: each phase computes its loss, runs one backward pass and steps the optimizers.

A phase is a function ``(cycle, images) -> {metric name: scalar tensor}`` registered by name in
PHASES; the training loop runs ``config.phases`` in order, so a new phase (or a new order) needs no
change to the loop. Returned scalars are detached; the loop averages them over an epoch. Loss names
follow ``loss/<phase>_<what>`` so a metric can be traced back to the phase that produced it.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Callable

import torch

from padream.config import TrainConfig
from padream.losses import discriminator_loss, kl_to_standard_normal, reconstruction_loss
from padream.memory import Hippocampus
from padream.networks import Encoder, Generator
from padream.occlusion import occlude, random_occlusion_parameters
from padream.rng import RandomStreams


@dataclass
class Cycle:
    """Everything a phase may read or update during one wake-sleep cycle."""

    config: TrainConfig
    encoder: Encoder
    generator: Generator
    encoder_optimizer: torch.optim.Optimizer
    generator_optimizer: torch.optim.Optimizer
    memory: Hippocampus
    rngs: RandomStreams
    autocast: Callable[[], AbstractContextManager]


Phase = Callable[[Cycle, torch.Tensor], dict[str, torch.Tensor]]
PHASES: dict[str, Phase] = {}


def register_phase(name: str) -> Callable[[Phase], Phase]:
    def decorate(phase: Phase) -> Phase:
        PHASES[name] = phase
        return phase

    return decorate


class _ReverseGradient(torch.autograd.Function):
    """Identity forward, negated gradient backward: the sign-switched plasticity of G in REM."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return -grad


def reverse_gradient(x: torch.Tensor) -> torch.Tensor:
    return _ReverseGradient.apply(x)


def _normal(shape: torch.Size, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    # Drawn on the CPU so that a seed gives the same noise on every device.
    return torch.randn(shape, generator=generator).to(device)


@register_phase("wake")
def wake(cycle: Cycle, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Reconstruct the batch, pull its latent statistics to N(0, 1), call it external; store z.

    One backward pass of the summed loss: E receives all three gradients; G, which appears only in
    the reconstruction term, receives the reconstruction gradient alone.
    """
    cfg = cycle.config
    with cycle.autocast():
        latents, logits = cycle.encoder(images)
        generator_input = latents
        if cfg.wake_latent_noise_std > 0:  # no-REM stabiliser (Methods, Eq. 12)
            noise = _normal(latents.shape, cycle.rngs.wake_noise, latents.device)
            generator_input = latents + cfg.wake_latent_noise_std * noise.to(latents.dtype)
        reconstructions = cycle.generator(generator_input)
    rec = reconstruction_loss(images, reconstructions)
    kl = kl_to_standard_normal(latents)
    real = discriminator_loss(logits, external=True)
    total = cfg.rec_weight * rec + cfg.kl_weight * kl + cfg.real_weight * real

    cycle.encoder_optimizer.zero_grad(set_to_none=True)
    cycle.generator_optimizer.zero_grad(set_to_none=True)
    total.backward()
    cycle.encoder_optimizer.step()
    cycle.generator_optimizer.step()
    cycle.memory.store(latents)
    return {"loss/wake_rec": rec.detach(), "loss/wake_kl": kl.detach(), "loss/wake_real": real.detach(),
            "d/real_mean": torch.sigmoid(logits.detach().float()).mean()}


@register_phase("nrem")
def nrem(cycle: Cycle, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Perturbed dreaming: occluded G(z) of stored memories; E learns to map them back to z. G is fixed."""
    cfg = cycle.config
    if cfg.nrem_replay == "single":
        memories = cycle.memory.replay()
    else:  # Appendix 1, fig. 6: NREM driven by REM-like mixed memories with noise
        memories = cycle.memory.mix(cfg.rem_memory_mix, cfg.rem_noise_mix, cycle.rngs.nrem_noise)
    probability, size = random_occlusion_parameters(
        cycle.rngs.occlusion, cfg.occlusion_max_probability, cfg.occlusion_max_size)
    with torch.no_grad(), cycle.autocast():  # G does not learn in NREM, so no graph through it
        dreams = cycle.generator(memories)
    dreams = occlude(dreams, probability, size, cycle.rngs.occlusion, per_image=cfg.occlusion_per_image)
    with cycle.autocast():
        recovered = cycle.encoder.encode(dreams)
    loss = reconstruction_loss(memories, recovered)

    cycle.encoder_optimizer.zero_grad(set_to_none=True)
    (cfg.nrem_weight * loss).backward()
    cycle.encoder_optimizer.step()
    return {"loss/nrem_latent": loss.detach()}


@register_phase("rem")
def rem(cycle: Cycle, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Adversarial dreaming: E learns to call G(z_mix) internal; G, through a reversed gradient,
    ascends the same loss (Algorithm 1: theta_G <- theta_G + grad L_REM)."""
    cfg = cycle.config
    mixed = cycle.memory.mix(cfg.rem_memory_mix, cfg.rem_noise_mix, cycle.rngs.rem_noise)
    with cycle.autocast():
        dreams = cycle.generator(mixed)
        logits = cycle.encoder.discriminate(reverse_gradient(dreams))
    loss = discriminator_loss(logits, external=False)

    cycle.encoder_optimizer.zero_grad(set_to_none=True)
    cycle.generator_optimizer.zero_grad(set_to_none=True)
    (cfg.rem_weight * loss).backward()
    cycle.encoder_optimizer.step()
    cycle.generator_optimizer.step()
    return {"loss/rem_fake": loss.detach(), "d/dream_mean": torch.sigmoid(logits.detach().float()).mean()}


def phase_of(metric: str) -> str | None:
    """The phase a ``loss/<phase>_<what>`` metric comes from (None for other names)."""
    if not metric.startswith("loss/"):
        return None
    phase = metric[len("loss/"):].split("_")[0]
    return phase if phase in PHASES else None


def run_cycle(cycle: Cycle, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """One wake-sleep cycle on one mini-batch: the configured phases, in order."""
    metrics: dict[str, torch.Tensor] = {}
    for name in cycle.config.phases:
        metrics.update(PHASES[name](cycle, images))
    return metrics
