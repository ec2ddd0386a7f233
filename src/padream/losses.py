"""The four losses of PAD (Methods, Eqs. 2-8), each a pure function of tensors.

Reconstruction losses are mean squared errors (mean over batch and elements): the paper's
1/b * sum ||.||^2 differs only by a constant per loss, and the mean keeps the three Wake terms on the
scales of the paper's Appendix 1 loss curves.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Floor on the batch variance inside log(sigma^2): keeps the KL finite for a latent dimension that is
# constant across the batch (log 0 = -inf) without changing its value anywhere else. It must sit far
# below real variances: freshly initialised small networks give latent variances near 1e-8.
VARIANCE_FLOOR = 1e-20


def reconstruction_loss(target: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(output.float(), target.float())


def kl_to_standard_normal(latents: torch.Tensor) -> torch.Tensor:
    """Eq. 4: 1/(2 n_z) * sum_j (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2), from the batch's statistics.

    mu and sigma are the empirical per-dimension mean and (unbiased) standard deviation of the batch,
    so a batch needs at least two latents.
    """
    if latents.ndim != 2:
        raise ValueError(f"latents must be (batch, latent_dim), got shape {tuple(latents.shape)}")
    if latents.shape[0] < 2:
        raise ValueError("the KL term needs a batch of at least 2 latents (it uses the batch's standard deviation)")
    z = latents.float()
    mean = z.mean(dim=0)
    variance = z.var(dim=0, unbiased=True)
    log_variance = variance.clamp_min(VARIANCE_FLOOR).log()
    return 0.5 * (mean.pow(2) + variance - 1.0 - log_variance).mean()


def discriminator_loss(logits: torch.Tensor, external: bool) -> torch.Tensor:
    """BCE of d = sigmoid(logit) against 1 (external) or 0 (internal); stable for saturated logits."""
    logits = logits.float()
    target = torch.ones_like(logits) if external else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)
