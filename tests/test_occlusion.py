import pytest
import torch

from padream.occlusion import occlude, random_occlusion_parameters, square_mask


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(n: int = 6) -> torch.Tensor:
    # Strictly positive, so a zero marks an occluded pixel.
    return torch.rand(n, 3, 32, 32, generator=gen(99)) + 0.5


@pytest.mark.parametrize("per_image", [True, False])
def test_probability_zero_changes_nothing(per_image):
    x = images()
    for size in (1, 3, 8):
        assert torch.equal(occlude(x, 0.0, size, gen(), per_image=per_image), x)


@pytest.mark.parametrize("per_image", [True, False])
def test_probability_one_zeroes_everything(per_image):
    x = images()
    for size in (1, 3, 8):
        assert torch.equal(occlude(x, 1.0, size, gen(), per_image=per_image), torch.zeros_like(x))


def test_fill_value_is_used():
    out = occlude(images(), 1.0, 4, gen(), fill=-1.0)
    assert torch.equal(out, torch.full_like(out, -1.0))


@pytest.mark.parametrize("probability", [0.3, 0.7])
def test_zeroed_fraction_matches_probability(probability):
    # 2000 images x 64 squares of 4x4: the fraction's standard error is about 0.0015.
    keep = square_mask(2000, 32, 32, probability, 4, gen(1), per_image=True)
    assert keep.shape == (2000, 1, 32, 32)
    assert abs((~keep).float().mean().item() - probability) < 0.02
    out = occlude(images(500), probability, 4, gen(2), per_image=True)
    assert abs((out == 0).float().mean().item() - probability) < 0.02


def test_same_seed_same_mask_and_different_seed_different_mask():
    a = square_mask(8, 32, 32, 0.5, 2, gen(5))
    b = square_mask(8, 32, 32, 0.5, 2, gen(5))
    c = square_mask(8, 32, 32, 0.5, 2, gen(6))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    x = images()
    assert torch.equal(occlude(x, 0.4, 3, gen(7)), occlude(x, 0.4, 3, gen(7)))


def test_per_image_false_shares_one_mask():
    keep = square_mask(16, 32, 32, 0.5, 4, gen(3), per_image=False)
    assert keep.shape == (1, 1, 32, 32)
    assert 0 < keep.float().mean() < 1
    out = occlude(images(16), 0.5, 4, gen(3), per_image=False)
    zero = out == 0
    # Every image and channel has exactly the same occluded pixels, and they are the mask's.
    assert torch.equal(zero, zero[:1].expand_as(zero))
    assert torch.equal(zero[0, 0], ~keep[0, 0])


def test_per_image_true_masks_differ_between_images():
    keep = square_mask(16, 32, 32, 0.5, 4, gen(3), per_image=True)
    assert len({tuple(k.flatten().tolist()) for k in keep}) > 1


def test_mask_is_shared_by_channels():
    zero = occlude(images(4), 0.5, 2, gen(4)) == 0
    assert torch.equal(zero, zero[:, :1].expand_as(zero))


@pytest.mark.parametrize("size", [2, 4, 8])
def test_occluded_regions_are_grid_aligned_squares(size):
    keep = square_mask(64, 32, 32, 0.5, size, gen(size), per_image=True)
    blocks = keep.reshape(64, 32 // size, size, 32 // size, size).permute(0, 1, 3, 2, 4).flatten(3)
    # Each size x size block of the grid is either all kept or all occluded.
    assert torch.equal(blocks.all(dim=3), blocks.any(dim=3))
    assert 0 < keep.float().mean() < 1


def test_size_not_dividing_the_image_crops_the_last_squares():
    keep = square_mask(32, 32, 32, 0.5, 5, gen(8), per_image=True)
    assert keep.shape == (32, 1, 32, 32)
    # Columns 30 and 31 belong to the seventh (cropped) square, so they always agree.
    assert torch.equal(keep[..., 30], keep[..., 31])
    assert torch.equal(keep[..., 25], keep[..., 29])


def test_invalid_arguments_raise():
    with pytest.raises(ValueError, match="probability"):
        square_mask(1, 32, 32, 1.5, 4, gen())
    with pytest.raises(ValueError, match="size"):
        square_mask(1, 32, 32, 0.5, 0, gen())


def test_random_occlusion_parameters_ranges_and_coverage():
    generator = gen(11)
    draws = [random_occlusion_parameters(generator) for _ in range(2000)]
    probabilities = torch.tensor([p for p, _ in draws])
    sizes = [s for _, s in draws]
    assert (probabilities >= 0).all() and (probabilities < 1).all()
    assert probabilities.min() < 0.05 and probabilities.max() > 0.95
    assert abs(probabilities.mean().item() - 0.5) < 0.03
    assert set(sizes) == set(range(1, 9))
    assert all(isinstance(s, int) for s in sizes)


def test_random_occlusion_parameters_respect_limits_and_seed():
    generator = gen(12)
    draws = [random_occlusion_parameters(generator, max_probability=0.3, max_size=3) for _ in range(500)]
    assert all(0 <= p < 0.3 for p, _ in draws)
    assert {s for _, s in draws} == {1, 2, 3}
    assert random_occlusion_parameters(gen(4)) == random_occlusion_parameters(gen(4))
