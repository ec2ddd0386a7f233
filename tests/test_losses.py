import math

import pytest
import torch

from padream.losses import VARIANCE_FLOOR, discriminator_loss, kl_to_standard_normal, reconstruction_loss


def standardised_batch(n: int = 16, dim: int = 6, seed: int = 0) -> torch.Tensor:
    """A batch whose per-dimension mean is 0 and unbiased standard deviation is 1."""
    z = torch.randn(n, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    z = (z - z.mean(dim=0)) / z.std(dim=0, unbiased=True)
    return z.float()


def test_kl_is_zero_for_standardised_batch():
    z = standardised_batch()
    assert torch.allclose(z.mean(0), torch.zeros(6), atol=1e-6)
    assert torch.allclose(z.std(0, unbiased=True), torch.ones(6), atol=1e-6)
    assert kl_to_standard_normal(z).item() == pytest.approx(0.0, abs=1e-6)


def test_kl_uses_unbiased_std():
    # With the biased std this batch would have variance (n-1)/n per dimension and a positive KL.
    z = standardised_batch(n=4)
    assert kl_to_standard_normal(z).item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("shift, scale", [(1.0, 1.0), (0.0, 2.0), (-0.5, 0.3)])
def test_kl_matches_closed_form_and_is_positive(shift, scale):
    z = standardised_batch() * scale + shift
    # Eq. 4 with mu_j = shift and sigma_j = scale for every dimension.
    expected = 0.5 * (shift ** 2 + scale ** 2 - 1.0 - math.log(scale ** 2))
    value = kl_to_standard_normal(z).item()
    assert value > 0
    assert value == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_kl_is_finite_for_a_constant_dimension():
    z = standardised_batch()
    z[:, 2] = 3.0
    z.requires_grad_(True)
    kl = kl_to_standard_normal(z)
    assert torch.isfinite(kl)
    # The constant dimension contributes (mu^2 + 0 - 1 - log floor) / 2, averaged over 6 dimensions.
    expected = 0.5 * (9.0 - 1.0 - math.log(VARIANCE_FLOOR)) / 6
    assert kl.item() == pytest.approx(expected, rel=1e-5)
    kl.backward()
    assert torch.isfinite(z.grad).all()


def test_kl_rejects_a_batch_of_one():
    with pytest.raises(ValueError, match="at least 2"):
        kl_to_standard_normal(torch.zeros(1, 8))


def test_kl_rejects_non_matrix_latents():
    with pytest.raises(ValueError, match="batch, latent_dim"):
        kl_to_standard_normal(torch.zeros(4, 2, 2))


@pytest.mark.parametrize("external", [True, False])
def test_discriminator_loss_is_finite_and_has_gradient_when_saturated(external):
    logits = torch.tensor([60.0, -60.0, 60.0, -60.0], requires_grad=True)
    loss = discriminator_loss(logits, external=external)
    # Two logits are confidently right (loss ~ e^-60) and two confidently wrong (loss ~ 60).
    assert torch.isfinite(loss)
    assert loss.item() == pytest.approx(30.0, rel=1e-5)
    loss.backward()
    assert torch.isfinite(logits.grad).all()
    assert logits.grad.abs().max() > 0
    target = 1.0 if external else 0.0
    expected = (torch.sigmoid(logits.detach()) - target) / logits.numel()  # d BCE / d logit
    assert torch.allclose(logits.grad, expected, atol=1e-7)


def test_discriminator_loss_values():
    logits = torch.tensor([0.0, 2.0, -1.0])
    d = torch.sigmoid(logits)
    assert discriminator_loss(logits, external=True).item() == pytest.approx(float(-d.log().mean()), rel=1e-6)
    assert discriminator_loss(logits, external=False).item() == pytest.approx(float(-(1 - d).log().mean()), rel=1e-6)


def test_reconstruction_loss_is_mean_squared_error():
    generator = torch.Generator().manual_seed(3)
    target = torch.rand(4, 3, 32, 32, generator=generator) * 2 - 1
    output = torch.rand(4, 3, 32, 32, generator=generator) * 2 - 1
    loss = reconstruction_loss(target, output)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(float(((target - output) ** 2).mean()), rel=1e-6)
    assert reconstruction_loss(target, target).item() == 0.0
    # Low-precision inputs are compared in fp32.
    assert reconstruction_loss(target.bfloat16(), output.bfloat16()).dtype == torch.float32
