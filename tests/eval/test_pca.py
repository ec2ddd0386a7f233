import pytest
import torch

from padream.eval.pca import KEYS, fit_pca, latent_pca, pca_projection, project, select_points

from .stand_ins import PixelLabelEncoder, images_with_labels


def planar_data(count: int = 200, dim: int = 16, seed: int = 0) -> torch.Tensor:
    """Points a u + b v + c on a 2-D plane through c, with u, v orthonormal in R^dim."""
    generator = torch.Generator().manual_seed(seed)
    basis, _ = torch.linalg.qr(torch.randn(dim, 2, generator=generator, dtype=torch.float64))
    coefficients = torch.randn(count, 2, generator=generator, dtype=torch.float64) * torch.tensor([3.0, 1.0],
                                                                                                   dtype=torch.float64)
    return coefficients @ basis.T + torch.randn(dim, generator=generator, dtype=torch.float64)


def pairwise(points: torch.Tensor) -> torch.Tensor:
    return torch.linalg.vector_norm(points[:, None] - points[None], dim=-1)


def test_a_plane_is_recovered_and_distances_are_preserved():
    x = planar_data()
    mean, components, ratio = fit_pca(x)
    assert float(ratio.sum()) == pytest.approx(1.0, abs=1e-10)
    assert float(ratio[0]) > float(ratio[1]) > 0
    torch.testing.assert_close(components @ components.T, torch.eye(2, dtype=torch.float64))
    projected = project(x, mean, components)
    torch.testing.assert_close(pairwise(projected), pairwise(x), atol=1e-9, rtol=0)


def test_the_sign_convention_makes_the_fit_reproducible_under_reordering():
    x = planar_data(seed=1)
    _, first, _ = fit_pca(x)
    _, second, _ = fit_pca(x.flip(0))
    torch.testing.assert_close(first, second)


def test_occluded_points_use_the_clean_components():
    x = planar_data(count=40)
    labels = torch.arange(40) % 4
    shifted = x + 0.5 * (x[1] - x[0])  # a shift within the plane
    result = pca_projection(x, x[:10], shifted[:10], labels[:10])
    points = torch.tensor(result["pca/points"], dtype=torch.float64)
    assert points.shape == (20, 2)
    assert result["pca/occluded"] == [False] * 10 + [True] * 10
    assert result["pca/labels"][:10] == result["pca/labels"][10:]
    mean, components, _ = fit_pca(x)
    offset = project(x[1:2], mean, components) - project(x[0:1], mean, components)
    torch.testing.assert_close(points[10:] - points[:10], 0.5 * offset.expand(10, 2), atol=1e-9, rtol=0)


def test_select_points_caps_each_class():
    labels = torch.tensor([0] * 5 + [1] * 2 + [2] * 9)
    index = select_points(labels, (0, 1, 2), 3, torch.Generator().manual_seed(0))
    assert labels[index].tolist() == [0, 0, 0, 1, 1, 2, 2, 2]
    assert len(set(index.tolist())) == 8
    with pytest.raises(ValueError, match="class 7"):
        select_points(labels, (7,), 3, torch.Generator())


def test_encoder_wrapper_returns_json_ready_lists():
    labels = torch.arange(80) % 10
    encoder = PixelLabelEncoder()
    result = latent_pca(encoder, images_with_labels(labels), labels, torch.device("cpu"),
                        torch.Generator().manual_seed(0), per_class=5)
    assert set(result) == set(KEYS)
    assert len(result["pca/points"]) == len(result["pca/labels"]) == len(result["pca/occluded"]) == 40
    assert result["pca/fit_points"] == 32 and result["pca/classes"] == [0, 1, 2, 3]
    assert set(result["pca/labels"]) == {0, 1, 2, 3}
    assert all(isinstance(p, list) and len(p) == 2 for p in result["pca/points"])
    # Four one-hot points span a 3-D simplex: two components carry 2/3 of the variance.
    assert sum(result["pca/explained_variance_ratio"]) == pytest.approx(2 / 3)
