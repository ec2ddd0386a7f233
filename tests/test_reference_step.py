"""The fast training step equals a plain reference written out from the paper's Methods.

The reference uses only functional convolutions on the same parameters, one backward pass per loss,
the paper's formulas (log-sigmoid BCE written out, KL of Eq. 4, explicit gradient ascent for G in
REM). The fast path differs in implementation only: dense heads as matrix multiplies, a single
backward per phase, gradient reversal.

Both sides use plain SGD here. Adam's first steps move every parameter by about +-lr whatever the
size of its gradient, so a parameter whose true gradient is zero (e.g. a bias the KL term cannot
see) would move by +-lr on float round-off alone and hide or fake a difference; SGD keeps the
update proportional to the gradient, which is what this test is about.
"""

from __future__ import annotations

import contextlib
import copy

import torch
import torch.nn.functional as F

from padream.config import make_config
from padream.occlusion import random_occlusion_parameters, square_mask
from padream.phases import run_cycle
from padream.train import build_cycle

SLOPE = 0.2
LR = 0.02


def reference_encoder(params: dict[str, torch.Tensor], x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    h = x
    for i in range(3):
        h = F.leaky_relu(F.conv2d(h, params[f"trunk.{2 * i}.weight"], params[f"trunk.{2 * i}.bias"], 2, 1), SLOPE)
    z = F.conv2d(h, params["latent_head.weight"], params["latent_head.bias"]).flatten(1)
    logit = F.conv2d(h, params["discriminator_head.weight"], params["discriminator_head.bias"]).flatten()
    return z, logit


def reference_generator(params: dict[str, torch.Tensor], z: torch.Tensor) -> torch.Tensor:
    h = F.leaky_relu(F.conv_transpose2d(z.view(z.shape[0], -1, 1, 1), params["project.weight"],
                                        params["project.bias"], 1, 0), SLOPE)
    for index in (1, 3):
        h = F.leaky_relu(F.conv_transpose2d(h, params[f"net.{index}.weight"], params[f"net.{index}.bias"], 2, 1),
                         SLOPE)
    return torch.tanh(F.conv_transpose2d(h, params["net.5.weight"], params["net.5.bias"], 2, 1))


def kl_eq4(z: torch.Tensor) -> torch.Tensor:
    mu, sigma = z.mean(0), z.std(0)
    return 0.5 * (mu ** 2 + sigma ** 2 - 1 - torch.log(sigma ** 2)).mean()


def grads(loss: torch.Tensor, params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    values = torch.autograd.grad(loss, list(params.values()), allow_unused=True, retain_graph=True)
    return {k: torch.zeros_like(p) if g is None else g for (k, p), g in zip(params.items(), values)}


def apply(optimizer: torch.optim.Optimizer, params: dict[str, torch.Tensor], gradient: dict[str, torch.Tensor]):
    for key, p in params.items():
        p.grad = gradient[key].clone()
    optimizer.step()


def reference_cycles(config, encoder_params, generator_params, batches, rngs):
    """Algorithm 1, step by step, for each batch; rngs: copies of the fast run's occlusion/REM streams."""
    e_opt = torch.optim.SGD(encoder_params.values(), lr=LR)
    g_opt = torch.optim.SGD(generator_params.values(), lr=LR)
    z_old = None
    for x in batches:
        # Wake: E learns from L_img + L_KL + L_real (one gradient per loss, summed), G from L_img only.
        z, d = reference_encoder(encoder_params, x)
        l_img = ((x - reference_generator(generator_params, z)) ** 2).mean()
        l_kl = kl_eq4(z)
        l_real = -F.logsigmoid(d).mean()
        e_grad = {k: a + b + c for (k, a), b, c in zip(grads(l_img, encoder_params).items(),
                                                       grads(l_kl, encoder_params).values(),
                                                       grads(l_real, encoder_params).values())}
        g_grad = grads(l_img, generator_params)
        apply(e_opt, encoder_params, e_grad)
        apply(g_opt, generator_params, g_grad)
        z = z.detach()

        # NREM: occluded G(z); E learns to return z; G untouched.
        probability, size = random_occlusion_parameters(rngs.occlusion, 1.0, 8)
        keep = square_mask(x.shape[0], 32, 32, probability, size, rngs.occlusion, per_image=False)
        dreams = reference_generator(generator_params, z).detach() * keep
        z_hat, _ = reference_encoder(encoder_params, dreams)
        apply(e_opt, encoder_params, grads(((z - z_hat) ** 2).mean(), encoder_params))

        # REM: z_mix = 0.5 (0.5 z + 0.5 z_old) + 0.5 eps (z itself on the first cycle);
        # E descends L_REM, G ascends it.
        if z_old is None:
            z_mix = z
        else:
            eps = torch.randn(z.shape, generator=rngs.rem_noise)
            z_mix = 0.5 * (0.5 * z + 0.5 * z_old) + 0.5 * eps
        _, d_dream = reference_encoder(encoder_params, reference_generator(generator_params, z_mix))
        l_rem = -torch.log1p(-torch.sigmoid(d_dream)).mean()
        e_grad, g_grad = grads(l_rem, encoder_params), grads(l_rem, generator_params)
        apply(e_opt, encoder_params, e_grad)
        apply(g_opt, generator_params, {k: -g for k, g in g_grad.items()})  # theta_G <- theta_G + grad
        z_old = z


def test_fast_step_matches_the_reference_step(batch):
    torch.manual_seed(0)
    config = make_config("pad", latent_dim=8, base_channels=4, device="cpu", precision="fp32")
    cycle = build_cycle(config, torch.device("cpu"), contextlib.nullcontext)
    cycle.encoder_optimizer = torch.optim.SGD(cycle.encoder.parameters(), lr=LR)
    cycle.generator_optimizer = torch.optim.SGD(cycle.generator.parameters(), lr=LR)
    with torch.no_grad():  # a tiny net at DCGAN init has latent variances ~1e-8, where float round-off in
        for p in cycle.encoder.parameters():  # the KL's 1/sigma^2 swamps everything; give it realistic ones
            p.mul_(3.0)
    reference_rngs = copy.deepcopy(cycle.rngs)
    encoder_params = {k: v.detach().clone().requires_grad_() for k, v in cycle.encoder.named_parameters()}
    generator_params = {k: v.detach().clone().requires_grad_() for k, v in cycle.generator.named_parameters()}
    batches = [batch(8, seed) for seed in range(3)]

    initial = {f"encoder.{k}": v.detach().clone() for k, v in cycle.encoder.named_parameters()}
    initial.update({f"generator.{k}": v.detach().clone() for k, v in cycle.generator.named_parameters()})

    for x in batches:
        run_cycle(cycle, x)
    reference_cycles(config, encoder_params, generator_params, batches, reference_rngs)

    for name, net, reference in (("encoder", cycle.encoder, encoder_params),
                                 ("generator", cycle.generator, generator_params)):
        for key, value in net.named_parameters():
            moved = (value - initial[f"{name}.{key}"]).abs().max().item()
            mismatch = (value - reference[key]).abs().max().item()
            # Float round-off only: under 0.1% of how far three cycles moved the parameter.
            assert moved > 0, f"{name}.{key} did not move"
            assert mismatch <= 1e-3 * moved + 1e-10, f"{name}.{key}: mismatch {mismatch:.3g} vs movement {moved:.3g}"
    # The comparison has teeth: the trunk moved far more than any tolerance above.
    assert (cycle.encoder.trunk[0].weight - initial["encoder.trunk.0.weight"]).abs().max() > 1e-3


def test_fused_adam_matches_torch_default_adam():
    """The fast path's fused Adam is the same update rule as the paper's (default) Adam."""
    generator = torch.Generator().manual_seed(0)
    start = torch.randn(1000, generator=generator)
    gradients = [torch.randn(1000, generator=generator) for _ in range(5)]
    results = []
    for fused in (True, False):
        p = start.clone().requires_grad_()
        optimizer = torch.optim.Adam([p], lr=2e-4, betas=(0.5, 0.999), fused=fused)
        for g in gradients:
            p.grad = g.clone()
            optimizer.step()
        results.append(p.detach())
    assert torch.allclose(results[0], results[1], rtol=0, atol=1e-7)
    assert (results[1] - start).abs().mean() > 1e-4  # the updates are far larger than the tolerance
