import numpy as np
import pytest
import torch

from padream.eval import fid
from padream.eval.fid import (KEYS, FIDWeightsError, dream_fid, feature_statistics, frechet_distance, image_features,
                              load_fid_inception, quantise, to_inception_input)
from padream.networks import build_networks
from padream.rng import generator_for


def random_covariance(dim: int, seed: int) -> np.ndarray:
    a = np.random.default_rng(seed).normal(size=(dim, dim))
    return a @ a.T + 0.1 * np.eye(dim)


def test_identical_statistics_give_zero():
    mu, sigma = np.arange(5.0), random_covariance(5, 0)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-8)


def test_equal_covariances_give_the_squared_mean_distance():
    sigma = random_covariance(6, 1)
    mu1, mu2 = np.zeros(6), np.array([1.0, -2.0, 0.5, 0.0, 3.0, 1.0])
    assert frechet_distance(mu1, sigma, mu2, sigma) == pytest.approx(float(mu2 @ mu2), abs=1e-8)


def test_one_dimensional_and_diagonal_closed_forms():
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2 for standard deviations s.
    assert frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([-2.0]), np.array([[9.0]])) == \
        pytest.approx(9.0 + 1.0)
    a, b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    expected = float(((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum())
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, abs=1e-10)


def test_a_singular_product_is_handled():
    # Covariances on orthogonal axes: the product is zero, its square root too, so FID = |dmu|^2 + Tr + Tr.
    sigma1, sigma2 = np.diag([1.0, 0.0]), np.diag([0.0, 2.0])
    assert frechet_distance(np.zeros(2), sigma1, np.ones(2), sigma2) == pytest.approx(2.0 + 3.0, abs=1e-6)


def test_statistics_refuse_fewer_samples_than_dimensions():
    with pytest.raises(ValueError, match="more samples than feature dimensions"):
        feature_statistics(torch.randn(8, 8))
    mu, sigma = feature_statistics(torch.randn(9, 8, generator=torch.Generator().manual_seed(0)))
    assert mu.shape == (8,) and sigma.shape == (8, 8) and sigma.dtype == np.float64


def test_mismatched_statistics_raise():
    with pytest.raises(ValueError, match="mismatched"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


def test_images_are_converted_once_to_the_inception_range():
    images = torch.tensor([0, 255], dtype=torch.uint8).view(2, 1, 1, 1).expand(2, 3, 32, 32)
    x = to_inception_input(images)
    assert x.shape == (2, 3, 299, 299)
    torch.testing.assert_close(x[0], torch.full_like(x[0], -1.0))
    torch.testing.assert_close(x[1], torch.full_like(x[1], 1.0))
    with pytest.raises(TypeError, match="uint8"):
        to_inception_input(images.float())
    assert quantise(torch.tensor([-1.0, 0.0, 1.0, 2.0])).tolist() == [0, 128, 255, 255]


class SmallFeatures(torch.nn.Module):
    """A fixed random conv net with 8-d features, standing in for Inception."""

    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 4, 4), torch.nn.Tanh(), torch.nn.AdaptiveAvgPool2d(1))
        weights = torch.Generator().manual_seed(0)
        with torch.no_grad():  # initialisation, not training
            for parameter in self.net.parameters():
                parameter.copy_(0.3 * torch.randn(parameter.shape, generator=weights))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images.float() / 127.5 - 1).flatten(1)


def test_the_whole_path_with_a_small_feature_network(generated_set):
    encoder, generator = build_networks(8, 4, generator_for(0, "init"))
    images = generated_set(60, 0).images
    network = SmallFeatures()
    runs = [dream_fid(encoder, generator, images, network, torch.device("cpu"), torch.Generator().manual_seed(1),
                      samples=40, batch_size=16) for _ in range(2)]
    assert runs[0] == runs[1]
    result = runs[0]
    assert set(result) == set(KEYS)
    assert result["fid/samples"] == 40 and result["fid/feature_dim"] == 8
    assert result["fid/feature_network"] == "SmallFeatures"
    assert result["fid/nrem"] > 0 and result["fid/rem"] > 0
    # The real side of the comparison: the same images against themselves give 0.
    real = feature_statistics(image_features(network, images[:40], torch.device("cpu")))
    assert frechet_distance(*real, *real) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="training images"):
        dream_fid(encoder, generator, images, network, torch.device("cpu"), torch.Generator(), samples=61)


def test_missing_weights_give_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv(fid.WEIGHTS_ENV, raising=False)
    with pytest.raises(FIDWeightsError, match="PADREAM_FID_WEIGHTS is not set") as info:
        load_fid_inception()
    assert fid.WEIGHTS_FILE in str(info.value) and "--fid-weights" in str(info.value)
    monkeypatch.setenv(fid.WEIGHTS_ENV, str(tmp_path / "nowhere.pth"))
    with pytest.raises(FIDWeightsError, match="not found at .*nowhere.pth"):
        load_fid_inception()
    assert isinstance(info.value, FileNotFoundError)


def test_the_fid_inception_architecture_gives_2048_features():
    pytest.importorskip("pytorch_fid")
    features = fid.InceptionFeatures(fid.build_fid_inception())
    out = features(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    assert out.shape == (1, fid.FEATURE_DIM)
