import math

import pytest
import torch

from padream.eval.latent_distances import (KEYS, clean_occluded_distance, distance_ratios, inter_class_distance,
                                           intra_class_distance, latent_distances)

from .stand_ins import PixelLabelEncoder, images_with_labels

# Three class centres, pairwise 5 apart (an equilateral triangle in the plane of the first two axes).
CENTRES = torch.tensor([[0.0, 0.0, 0.0], [5.0, 0.0, 0.0], [2.5, 5.0 * math.sqrt(3) / 2, 0.0]])


def clusters(per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
    labels = torch.arange(3).repeat_interleave(per_class)
    return CENTRES[labels].clone(), labels


def test_zero_spread_clusters_give_zero_intra_and_the_exact_inter_distance():
    latents, labels = clusters(20)
    result = distance_ratios(latents, labels, latents, latents.clone(), torch.Generator().manual_seed(0))
    assert result["distance/intra"] == 0.0
    assert result["distance/inter"] == pytest.approx(5.0, abs=1e-6)  # float32 centres
    assert result["distance/intra_inter_ratio"] == 0.0
    assert result["distance/clean_occluded"] == 0.0 and result["distance/clean_occluded_inter_ratio"] == 0.0


def test_no_item_is_paired_with_itself():
    # Two items per class, d_c apart: every same-class pair is exactly that pair.
    latents = torch.tensor([[0.0, 0.0], [3.0, 4.0], [10.0, 0.0], [10.0, 1.0], [0.0, 20.0], [0.0, 22.0]])
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    intra = intra_class_distance(latents, labels, torch.Generator().manual_seed(1), pairs_per_class=50)
    assert intra == pytest.approx((5.0 + 1.0 + 2.0) / 3, abs=1e-12)


def test_inter_pairs_never_share_a_class():
    # Same-class items coincide and classes are 5 apart, so any same-class pair would pull the mean below 5.
    latents, labels = clusters(2)
    assert inter_class_distance(latents, labels, torch.Generator().manual_seed(2), pairs=500) == pytest.approx(5.0)


def test_intra_distance_is_the_mean_over_classes():
    # Class 0: two items 2 apart; class 1: three collinear items at 0, 1, 3 (pair distances 1, 2, 3).
    latents = torch.tensor([[0.0], [2.0], [10.0], [11.0], [13.0]])
    labels = torch.tensor([0, 0, 1, 1, 1])
    intra = intra_class_distance(latents, labels, torch.Generator().manual_seed(3), pairs_per_class=20_000)
    assert intra == pytest.approx((2.0 + 2.0) / 2, abs=0.03)


def test_clean_occluded_distance_pairs_rows():
    clean = torch.zeros(4, 2)
    occluded = torch.tensor([[3.0, 4.0], [0.0, 1.0], [0.0, 0.0], [6.0, 8.0]])
    assert clean_occluded_distance(clean, occluded) == pytest.approx((5 + 1 + 0 + 10) / 4)
    with pytest.raises(ValueError, match="pair up"):
        clean_occluded_distance(clean, occluded[:3])


def test_degenerate_inputs_raise():
    with pytest.raises(ValueError, match="two"):
        intra_class_distance(torch.zeros(3, 2), torch.tensor([0, 0, 1]), torch.Generator())
    with pytest.raises(ValueError, match="two classes"):
        inter_class_distance(torch.zeros(3, 2), torch.tensor([1, 1, 1]), torch.Generator())


def test_encoder_wrapper_with_an_occlusion_blind_encoder():
    labels = torch.arange(60) % 10
    images = images_with_labels(labels)
    encoder = PixelLabelEncoder()
    # p = 0: the occluded images are the clean ones, so the clean-occluded distance is 0.
    result = latent_distances(encoder, images, labels, torch.device("cpu"), torch.Generator().manual_seed(4),
                              probability=0.0, intra_pairs_per_class=10, inter_pairs=100)
    assert set(result) == set(KEYS)
    assert result["distance/clean_occluded"] == 0.0 and result["distance/clean_occluded_pairs"] == 60
    assert result["distance/intra"] == 0.0
    assert result["distance/inter"] == pytest.approx(3.0 * math.sqrt(2))  # one-hots scaled by 3
    # p = 1 blanks every occluded image: its latent is class 6's, so the distance is 0 for class 6 only.
    blank = latent_distances(encoder, images, labels, torch.device("cpu"), torch.Generator().manual_seed(4),
                             probability=1.0, clean_occluded_pairs=20, intra_pairs_per_class=10, inter_pairs=100)
    assert blank["distance/clean_occluded_pairs"] == 20
    assert 0.0 < blank["distance/clean_occluded"] <= 3.0 * math.sqrt(2)
