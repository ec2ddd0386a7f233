import copy
import math

import pytest
import torch

from padream import phases
from padream.losses import discriminator_loss, kl_to_standard_normal, reconstruction_loss
from padream.occlusion import occlude, random_occlusion_parameters
from padream.phases import PHASES, nrem, rem, reverse_gradient, run_cycle, wake

WAKE_KEYS = {"loss/wake_rec", "loss/wake_kl", "loss/wake_real", "d/real_mean"}
NREM_KEYS = {"loss/nrem_latent"}
REM_KEYS = {"loss/rem_fake", "d/dream_mean"}


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def changed(before: dict[str, torch.Tensor], module: torch.nn.Module) -> set[str]:
    return {k for k, v in module.named_parameters() if not torch.equal(before[k], v.detach())}


def clone_generator(generator: torch.Generator) -> torch.Generator:
    copy_ = torch.Generator()
    copy_.set_state(generator.get_state())
    return copy_


def capture_gradients(optimizer: torch.optim.Optimizer, store: dict, name: str) -> None:
    """Record each parameter's .grad at the moment the phase steps the optimizer."""
    original = optimizer.step

    def step(*args, **kwargs):
        store[name] = [None if p.grad is None else p.grad.detach().clone()
                       for group in optimizer.param_groups for p in group["params"]]
        return original(*args, **kwargs)

    optimizer.step = step


def assert_gradients_equal(captured, expected, sign=1.0):
    assert len(captured) == len(expected)
    for got, want in zip(captured, expected):
        assert got is not None
        assert torch.allclose(got, sign * want, rtol=1e-5, atol=1e-10)


def prime(cycle, batch, wakes: int = 2):
    """Run Wake on distinct batches so the hippocampus holds a current and a previous memory."""
    for i in range(wakes):
        wake(cycle, batch(8, seed=10 + i))


# -- Wake -------------------------------------------------------------------------------------------

def test_wake_gradients_generator_from_reconstruction_only(tiny_config, build_cycle, batch):
    cfg = tiny_config(rec_weight=1.5, kl_weight=3.0, real_weight=2.0)
    cycle = build_cycle(cfg)
    images = batch()
    encoder, generator = copy.deepcopy(cycle.encoder), copy.deepcopy(cycle.generator)
    grads = {}
    capture_gradients(cycle.encoder_optimizer, grads, "encoder")
    capture_gradients(cycle.generator_optimizer, grads, "generator")
    metrics = wake(cycle, images)

    latents, logits = encoder(images)
    rec = reconstruction_loss(images, generator(latents))
    kl, real = kl_to_standard_normal(latents), discriminator_loss(logits, external=True)
    assert metrics["loss/wake_rec"].item() == pytest.approx(rec.item(), rel=1e-6)
    assert metrics["loss/wake_kl"].item() == pytest.approx(kl.item(), rel=1e-6)
    assert metrics["loss/wake_real"].item() == pytest.approx(real.item(), rel=1e-6)
    assert metrics["d/real_mean"].item() == pytest.approx(torch.sigmoid(logits).mean().item(), rel=1e-6)

    generator_grads = torch.autograd.grad(cfg.rec_weight * rec, list(generator.parameters()), retain_graph=True)
    assert_gradients_equal(grads["generator"], generator_grads)
    total = cfg.rec_weight * rec + cfg.kl_weight * kl + cfg.real_weight * real
    assert_gradients_equal(grads["encoder"], torch.autograd.grad(total, list(encoder.parameters())))


def test_wake_generator_update_ignores_kl_and_real_weights(tiny_config, build_cycle, batch):
    images = batch()
    default = build_cycle(tiny_config())
    without = build_cycle(tiny_config(kl_weight=0.0, real_weight=0.0))
    before_encoder = snapshot(default.encoder)
    for cycle in (default, without):
        wake(cycle, images)
    for (name, a), b in zip(default.generator.named_parameters(), without.generator.parameters()):
        assert torch.equal(a, b), name
    assert changed(before_encoder, default.encoder)
    assert any(not torch.equal(a, b) for a, b in zip(default.encoder.parameters(), without.encoder.parameters()))


def test_wake_stores_the_latents_computed_before_the_update(build_cycle, config, batch):
    cycle = build_cycle(config)
    images = batch()
    with torch.no_grad():
        expected = cycle.encoder.encode(images).clone()
    wake(cycle, images)
    with torch.no_grad():
        after = cycle.encoder.encode(images)
    # The encoder did learn, and memory holds the latents from before its update.
    assert not torch.allclose(after, expected, rtol=1e-4, atol=0)
    assert torch.allclose(cycle.memory.current, expected, rtol=1e-6, atol=1e-9)
    assert not cycle.memory.current.requires_grad
    assert cycle.memory.previous is None
    wake(cycle, batch(8, seed=5))
    assert torch.allclose(cycle.memory.previous, expected, rtol=1e-6, atol=1e-9)


def _wake_generator_input(cycle, images):
    """(what G received during one Wake step, the encoder's latents of `images` before the step)."""
    seen = []
    cycle.generator.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    with torch.no_grad():  # reference latents only
        latents = cycle.encoder.encode(images).clone()
    wake(cycle, images)
    return seen[0], latents


def test_wake_feeds_noise_free_latents_to_the_generator_in_pad(build_cycle, config, batch):
    cycle = build_cycle(config)
    wake_noise_state = cycle.rngs.wake_noise.get_state()
    generator_input, latents = _wake_generator_input(cycle, batch())
    assert torch.allclose(generator_input, latents, rtol=1e-6, atol=1e-9)
    assert torch.equal(cycle.rngs.wake_noise.get_state(), wake_noise_state)


def test_no_rem_adds_noise_to_the_generator_input_but_stores_clean_latents(tiny_config, build_cycle, batch):
    cfg = tiny_config("no-rem")
    assert cfg.wake_latent_noise_std == pytest.approx(math.sqrt(0.5))
    cycle = build_cycle(cfg)
    noise = torch.randn((8, cfg.latent_dim), generator=clone_generator(cycle.rngs.wake_noise))
    generator_input, latents = _wake_generator_input(cycle, batch())
    assert torch.allclose(generator_input, latents + cfg.wake_latent_noise_std * noise, atol=1e-6)
    assert not torch.allclose(generator_input, latents, atol=0.1)
    assert torch.allclose(cycle.memory.current, latents, rtol=1e-6, atol=1e-9)


# -- NREM -------------------------------------------------------------------------------------------

def test_nrem_trains_only_the_encoders_latent_path(build_cycle, config, batch):
    cycle = build_cycle(config)
    prime(cycle, batch)
    encoder_before, generator_before = snapshot(cycle.encoder), snapshot(cycle.generator)
    generator_buffers = {k: v.clone() for k, v in cycle.generator.state_dict().items()}
    metrics = nrem(cycle, batch())
    assert set(metrics) == NREM_KEYS
    assert not changed(generator_before, cycle.generator)  # bit-for-bit
    assert all(torch.equal(v, generator_buffers[k]) for k, v in cycle.generator.state_dict().items())
    moved = changed(encoder_before, cycle.encoder)
    latent_path = {k for k in encoder_before if k.startswith(("trunk.", "latent_head."))}
    assert moved == latent_path
    assert not any(k.startswith("discriminator_head.") for k in moved)


def test_nrem_loss_is_the_latent_reconstruction_of_occluded_dreams(build_cycle, config, batch):
    cycle = build_cycle(config)
    prime(cycle, batch)
    memories = cycle.memory.current.clone()
    encoder, generator = copy.deepcopy(cycle.encoder), copy.deepcopy(cycle.generator)
    occlusion = clone_generator(cycle.rngs.occlusion)
    metrics = nrem(cycle, batch())

    probability, size = random_occlusion_parameters(occlusion, config.occlusion_max_probability,
                                                    config.occlusion_max_size)
    with torch.no_grad():
        dreams = occlude(generator(memories), probability, size, occlusion, per_image=False)
        expected = reconstruction_loss(memories, encoder.encode(dreams))
    assert metrics["loss/nrem_latent"].item() == pytest.approx(expected.item(), rel=1e-5)


# -- REM --------------------------------------------------------------------------------------------

def test_rem_is_adversarial_with_a_reversed_generator_gradient(tiny_config, build_cycle, batch):
    cfg = tiny_config(lr=1e-3, rem_weight=0.7)
    cycle = build_cycle(cfg)
    # Fill the hippocampus without training, so the optimizers' first step is REM's alone (Adam's
    # momentum would otherwise carry Wake's push of d towards 'external' into this step).
    with torch.no_grad():
        for seed in (10, 11):
            cycle.memory.store(cycle.encoder.encode(batch(8, seed)))
    old_encoder, old_generator = copy.deepcopy(cycle.encoder), copy.deepcopy(cycle.generator)
    # The batch of mixed latents this REM step draws: same hippocampus, a copy of the REM noise stream.
    z_mix = cycle.memory.mix(cfg.rem_memory_mix, cfg.rem_noise_mix, clone_generator(cycle.rngs.rem_noise))
    assert not torch.allclose(z_mix, cycle.memory.current)
    grads = {}
    capture_gradients(cycle.encoder_optimizer, grads, "encoder")
    capture_gradients(cycle.generator_optimizer, grads, "generator")
    latent_head_before = snapshot(cycle.encoder.latent_head)

    metrics = rem(cycle, batch())
    assert set(metrics) == REM_KEYS

    logits = old_encoder.discriminate(old_generator(z_mix))
    loss = discriminator_loss(logits, external=False)
    assert metrics["loss/rem_fake"].item() == pytest.approx(loss.item(), rel=1e-6)
    assert metrics["d/dream_mean"].item() == pytest.approx(torch.sigmoid(logits).mean().item(), rel=1e-6)

    # Gradient reversal: G receives exactly minus the gradient of the (weighted) REM loss ...
    weighted = cfg.rem_weight * loss
    generator_grads = torch.autograd.grad(weighted, list(old_generator.parameters()), retain_graph=True)
    assert_gradients_equal(grads["generator"], generator_grads, sign=-1.0)
    # ... while E's discriminator path receives the plain gradient, and its latent head none.
    encoder_params = dict(old_encoder.named_parameters())
    used = [k for k in encoder_params if not k.startswith("latent_head.")]
    encoder_grads = dict(zip(used, torch.autograd.grad(weighted, [encoder_params[k] for k in used])))
    for (name, _), got in zip(old_encoder.named_parameters(), grads["encoder"]):
        if name.startswith("latent_head."):
            assert got is None
        else:
            assert torch.allclose(got, encoder_grads[name], rtol=1e-5, atol=1e-10), name
    assert not changed(latent_head_before, cycle.encoder.latent_head)

    # Effect of each network's step on d = sigmoid(E_d(G(z_mix))), evaluated in float64.
    def d(encoder, generator) -> float:
        encoder, generator = copy.deepcopy(encoder).double(), copy.deepcopy(generator).double()
        with torch.no_grad():
            return torch.sigmoid(encoder.discriminate(generator(z_mix.double()))).mean().item()

    baseline = d(old_encoder, old_generator)
    encoder_only = d(cycle.encoder, old_generator)
    generator_only = d(old_encoder, cycle.generator)
    assert encoder_only < baseline  # E learns to call dreams internal
    assert generator_only > baseline  # G learns to make them look external


def test_reverse_gradient_is_identity_forward_and_negation_backward():
    x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = reverse_gradient(x)
    assert torch.equal(y, x.detach())
    (y * torch.tensor([2.0, 3.0, 4.0])).sum().backward()
    assert torch.equal(x.grad, torch.tensor([-2.0, -3.0, -4.0]))


def test_rem_on_the_first_cycle_replays_z_itself(tiny_config, build_cycle, batch):
    cycle = build_cycle(tiny_config())
    wake(cycle, batch())
    z = cycle.memory.current.clone()
    encoder, generator = copy.deepcopy(cycle.encoder), copy.deepcopy(cycle.generator)
    metrics = rem(cycle, batch())
    with torch.no_grad():
        expected = discriminator_loss(encoder.discriminate(generator(z)), external=False)
    assert metrics["loss/rem_fake"].item() == pytest.approx(expected.item(), rel=1e-6)


# -- Cycle ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("condition, keys", [
    ("pad", WAKE_KEYS | NREM_KEYS | REM_KEYS),
    ("no-rem", WAKE_KEYS | NREM_KEYS),
    ("no-nrem", WAKE_KEYS | REM_KEYS),
    ("wake-only", WAKE_KEYS),
])
def test_run_cycle_returns_the_conditions_metrics(tiny_config, build_cycle, batch, condition, keys):
    cycle = build_cycle(tiny_config(condition))
    for seed in range(2):
        metrics = run_cycle(cycle, batch(8, seed))
        assert set(metrics) == keys
        for name, value in metrics.items():
            assert value.ndim == 0 and not value.requires_grad and torch.isfinite(value), name
        assert 0 < metrics["d/real_mean"] < 1


@pytest.mark.parametrize("condition, order", [
    ("pad", ["wake", "nrem", "rem"]),
    ("rem-before-nrem", ["wake", "rem", "nrem"]),
    ("wake-only", ["wake"]),
])
def test_run_cycle_runs_the_configured_phases_in_order(tiny_config, build_cycle, batch, monkeypatch,
                                                       condition, order):
    calls = []
    for name, phase in list(PHASES.items()):
        def spy(cycle, images, name=name, phase=phase):
            calls.append(name)
            return phase(cycle, images)
        monkeypatch.setitem(phases.PHASES, name, spy)
    cycle = build_cycle(tiny_config(condition))
    run_cycle(cycle, batch())
    assert calls == order
