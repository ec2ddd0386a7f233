import torch
from PIL import Image

from padream.data import to_unit_range
from padream.eval.dreams import KEYS, dream_batches, dream_grids, grid_size
from padream.networks import build_networks
from padream.rng import generator_for

CPU = torch.device("cpu")


def networks():
    return build_networks(8, 4, generator_for(0, "init"))


def test_png_has_the_expected_size_and_is_deterministic(tmp_path, generated_set):
    encoder, generator = networks()
    wake, old = generated_set(12, 0).images, generated_set(12, 1).images
    results = []
    for name in ("a.png", "b.png"):
        results.append(dream_grids(encoder, generator, wake, old, tmp_path / name, torch.Generator().manual_seed(7),
                                   CPU, nrow=8))
    assert set(results[0]) == set(KEYS)
    # 12 images in rows of 8: 2 rows per grid, three grids stacked.
    expected = (8 * 34 + 2, 3 * (2 * 34 + 2))
    assert grid_size(12, 8) == expected and tuple(results[0]["dreams/size"]) == expected
    assert Image.open(tmp_path / "a.png").size == expected
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    other = dream_grids(encoder, generator, wake, old, tmp_path / "c.png", torch.Generator().manual_seed(8), CPU)
    assert other["dreams/size"] == results[0]["dreams/size"]
    assert (tmp_path / "c.png").read_bytes() != (tmp_path / "a.png").read_bytes()  # other REM noise


def test_rows_follow_the_phases_and_rem_mixes_as_the_hippocampus_does(generated_set):
    encoder, generator = networks()
    encoder.train()
    wake, old = generated_set(6, 0).images, generated_set(6, 1).images
    batches = dream_batches(encoder, generator, wake, old, torch.Generator().manual_seed(3), CPU,
                            memory_mix=0.25, noise_mix=0.6)
    assert encoder.training and generator.training  # modes restored
    with torch.no_grad():
        z = encoder.encode(to_unit_range(wake))
        z_old = encoder.encode(to_unit_range(old))
        eps = torch.randn(z.shape, generator=torch.Generator().manual_seed(3))
        expected_mix = 0.6 * (0.25 * z + 0.75 * z_old) + 0.4 * eps
        torch.testing.assert_close(batches["mixed_latents"], expected_mix)
        torch.testing.assert_close(batches["wake"], to_unit_range(wake))
        torch.testing.assert_close(batches["nrem"], generator(z))
        torch.testing.assert_close(batches["rem"], generator(expected_mix))


def test_paper_constants_and_optional_nrem_occlusion(generated_set):
    encoder, generator = networks()
    wake, old = generated_set(4, 0).images, generated_set(4, 1).images
    batches = dream_batches(encoder, generator, wake, old, torch.Generator().manual_seed(0), CPU)
    z, z_old = batches["latents"], batches["old_latents"]
    eps = torch.randn(z.shape, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(batches["mixed_latents"], 0.5 * (0.5 * z + 0.5 * z_old) + 0.5 * eps)
    blanked = dream_batches(encoder, generator, wake, old, torch.Generator().manual_seed(0), CPU,
                            nrem_occlusion=(1.0, 4))
    assert torch.equal(blanked["nrem"], torch.zeros_like(blanked["nrem"]))
    torch.testing.assert_close(blanked["rem"], batches["rem"])  # the mask is drawn after the REM noise
