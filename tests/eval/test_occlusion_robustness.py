import pytest
import torch

from padream.data import ImageSet
from padream.eval.occlusion_robustness import KEYS, PROBABILITIES, occlusion_robustness

from .stand_ins import ZERO_IMAGE_CLASS, PixelLabelEncoder, images_with_labels


def labelled_set(count: int, seed: int) -> ImageSet:
    labels = torch.randint(0, 10, (count,), generator=torch.Generator().manual_seed(seed))
    return ImageSet(images_with_labels(labels, seed), labels, f"pixel-labels[{count}]")


def run(seed: int = 0, **kwargs) -> tuple[dict, ImageSet]:
    train, test = labelled_set(200, 1), labelled_set(257, 2)
    encoder = PixelLabelEncoder()
    encoder.train()
    result = occlusion_robustness(encoder, train, test, torch.device("cpu"), torch.Generator().manual_seed(seed),
                                  epochs=5, **kwargs)
    assert encoder.training  # restored after evaluation
    return result, test


def test_clean_images_are_read_out_perfectly_and_blank_ones_give_the_constant_class_share():
    result, test = run()
    assert set(result) == set(KEYS)
    assert result["occlusion/probabilities"] == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    assert result["occlusion/size"] == 4
    accuracies = result["occlusion/test_acc"]
    assert len(accuracies) == len(PROBABILITIES)
    assert accuracies[0] == 1.0
    # p = 1 blanks every image: one latent for all, so accuracy is the share of the class it is read as.
    share = float((test.labels == ZERO_IMAGE_CLASS).float().mean())
    assert accuracies[-1] == pytest.approx(share, abs=1e-7)
    for value in accuracies:  # counted over all 257 test images, none dropped
        assert value * 257 == pytest.approx(round(value * 257), abs=1e-3)


def test_accuracy_falls_with_occlusion_and_masks_are_reproducible():
    first, _ = run(seed=3)
    again, _ = run(seed=3)
    assert first == again
    accuracies = first["occlusion/test_acc"]
    # The label pixel survives with probability 1 - p, so accuracy tracks (1 - p) + p * share.
    assert accuracies[5] == pytest.approx(0.5 + 0.5 * accuracies[-1], abs=0.1)
    assert accuracies[0] > accuracies[5] > accuracies[-1]


def test_probabilities_and_size_are_configurable():
    result, _ = run(probabilities=(0.0, 1.0), size=8)
    assert result["occlusion/probabilities"] == [0.0, 1.0] and result["occlusion/size"] == 8
    assert len(result["occlusion/test_acc"]) == 2
