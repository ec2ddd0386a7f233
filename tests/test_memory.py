import pytest
import torch

from padream.memory import Hippocampus


def latents(seed: int, n: int = 8, dim: int = 5) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))


def test_replay_before_any_wake_raises():
    with pytest.raises(RuntimeError, match="empty"):
        Hippocampus().replay()


def test_store_keeps_a_detached_copy_and_shifts_previous():
    memory = Hippocampus()
    first = latents(0).requires_grad_(True)
    memory.store(first * 1.0)
    assert not memory.current.requires_grad
    assert memory.previous is None
    second = latents(1)
    memory.store(second)
    second.add_(100.0)  # changing the caller's tensor must not change the memory
    assert torch.equal(memory.previous, first.detach())
    assert torch.equal(memory.current, latents(1))
    assert torch.equal(memory.replay(), latents(1))


def test_first_cycle_mix_is_z_itself():
    memory = Hippocampus()
    memory.store(latents(0))
    generator = torch.Generator().manual_seed(0)
    state = generator.get_state()
    assert torch.equal(memory.mix(0.5, 0.5, generator), latents(0))
    assert torch.equal(generator.get_state(), state)  # no noise drawn on the first cycle


def test_later_mix_is_the_papers_convex_combination():
    memory = Hippocampus()
    z_old, z = latents(0), latents(1)
    memory.store(z_old)
    memory.store(z)
    mixed = memory.mix(0.5, 0.5, torch.Generator().manual_seed(42))
    eps = torch.randn(z.shape, generator=torch.Generator().manual_seed(42))
    expected = 0.5 * (0.5 * z + 0.5 * z_old) + 0.5 * eps
    assert torch.allclose(mixed, expected, atol=1e-6)
    assert not torch.allclose(mixed, z)


def test_general_mix_coefficients():
    memory = Hippocampus()
    z_old, z = latents(0), latents(1)
    memory.store(z_old)
    memory.store(z)
    mixed = memory.mix(0.8, 0.3, torch.Generator().manual_seed(7))
    eps = torch.randn(z.shape, generator=torch.Generator().manual_seed(7))
    assert torch.allclose(mixed, 0.3 * (0.8 * z + 0.2 * z_old) + 0.7 * eps, atol=1e-6)
    pure_noise = memory.mix(0.5, 0.0, torch.Generator().manual_seed(7))
    assert torch.allclose(pure_noise, eps, atol=1e-7)


def test_memory_mix_one_and_noise_mix_one_return_z():
    memory = Hippocampus()
    memory.store(latents(0))
    memory.store(latents(1))
    assert torch.equal(memory.mix(1.0, 1.0, torch.Generator().manual_seed(0)), latents(1))


def test_old_memories_are_reused_cyclically_for_a_larger_batch():
    memory = Hippocampus()
    z_old, z = latents(0, n=3), latents(1, n=7)
    memory.store(z_old)
    memory.store(z)
    mixed = memory.mix(0.0, 1.0, torch.Generator().manual_seed(0))  # z_old alone
    assert mixed.shape == z.shape
    assert torch.equal(mixed, z_old[torch.arange(7) % 3])


def test_state_dict_round_trip():
    memory = Hippocampus()
    memory.store(latents(0))
    memory.store(latents(1))
    restored = Hippocampus()
    restored.load_state_dict(memory.state_dict())
    assert torch.equal(restored.current, latents(1))
    assert torch.equal(restored.previous, latents(0))
    empty = Hippocampus()
    empty.load_state_dict(Hippocampus().state_dict())
    assert empty.current is None and empty.previous is None
