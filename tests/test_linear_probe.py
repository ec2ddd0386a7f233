import pytest
import torch

from padream.data import to_unit_range
from padream.eval.linear_probe import encode_images, linear_separability, train_linear_probe
from padream.networks import build_networks
from padream.rng import generator_for

KEYS = {"probe/train_acc", "probe/test_acc", "probe/test_acc_last5"}


def labelled_latents(labels: torch.Tensor, seed: int, dim: int = 16, noise: float = 0.05) -> torch.Tensor:
    """Latents that encode the label: its one-hot vector in the first 10 dimensions, plus noise."""
    z = noise * torch.randn(labels.shape[0], dim, generator=torch.Generator().manual_seed(seed))
    z[:, :10] += torch.nn.functional.one_hot(labels, 10).float()
    return z


def balanced_labels(count: int, seed: int) -> torch.Tensor:
    labels = torch.arange(count) % 10
    return labels[torch.randperm(count, generator=torch.Generator().manual_seed(seed))]


def test_label_encoding_latents_are_read_out_perfectly():
    train_labels, test_labels = balanced_labels(500, 0), balanced_labels(1003, 1)
    result = train_linear_probe(labelled_latents(train_labels, 2), train_labels,
                                labelled_latents(test_labels, 3), test_labels, torch.Generator().manual_seed(0))
    assert set(result) == KEYS
    assert result["probe/train_acc"] == pytest.approx(1.0)
    assert result["probe/test_acc"] >= 0.99
    assert result["probe/test_acc_last5"] >= 0.99


def test_constant_latents_give_chance_accuracy():
    train_labels, test_labels = balanced_labels(500, 0), balanced_labels(1000, 1)
    constant_train, constant_test = torch.ones(500, 16), torch.ones(1000, 16)
    result = train_linear_probe(constant_train, train_labels, constant_test, test_labels,
                                torch.Generator().manual_seed(0), epochs=5)
    # Identical latents get one prediction, so accuracy is that class's share: 1/10 when balanced.
    assert result["probe/test_acc"] == pytest.approx(0.1, abs=1e-6)
    assert result["probe/train_acc"] == pytest.approx(0.1, abs=1e-6)
    assert abs(result["probe/test_acc"] - 0.1) <= 0.05


def test_every_test_item_is_counted():
    # 1003 = 15 * 64 + 43 test items; the last 7 carry a wrong label, so they are exactly the errors.
    train_labels = balanced_labels(500, 0)
    true_labels = balanced_labels(1003, 1)
    test_latents = labelled_latents(true_labels, 3, noise=0.01)
    test_labels = true_labels.clone()
    test_labels[-7:] = (test_labels[-7:] + 1) % 10
    result = train_linear_probe(labelled_latents(train_labels, 2, noise=0.01), train_labels,
                                test_latents, test_labels, torch.Generator().manual_seed(0), epochs=10)
    correct = result["probe/test_acc"] * 1003
    assert abs(correct - round(correct)) < 1e-3
    assert round(correct) == 996


@pytest.mark.parametrize("epochs, averaged", [(7, range(3, 8)), (2, range(1, 3))])
def test_last5_is_the_mean_test_accuracy_of_the_last_five_epochs(epochs, averaged):
    train_labels, test_labels = balanced_labels(200, 0), balanced_labels(100, 1)
    train = labelled_latents(train_labels, 2, noise=1.0)
    test = labelled_latents(test_labels, 3, noise=1.0)

    def probe(count: int) -> dict:
        # A shorter run with the same seed follows the same trajectory for its `count` epochs.
        return train_linear_probe(train, train_labels, test, test_labels, torch.Generator().manual_seed(9),
                                  epochs=count)

    per_epoch = [probe(e)["probe/test_acc"] for e in averaged]
    assert len(set(per_epoch)) > 1
    assert probe(epochs)["probe/test_acc_last5"] == pytest.approx(sum(per_epoch) / len(per_epoch), abs=1e-6)


def test_same_generator_seed_gives_the_same_result():
    train_labels, test_labels = balanced_labels(200, 0), balanced_labels(100, 1)
    train = labelled_latents(train_labels, 2, noise=1.0)
    test = labelled_latents(test_labels, 3, noise=1.0)
    runs = [train_linear_probe(train, train_labels, test, test_labels, torch.Generator().manual_seed(5), epochs=3)
            for _ in range(2)]
    assert runs[0] == runs[1]


def test_empty_inputs_raise():
    with pytest.raises(ValueError, match="non-empty"):
        train_linear_probe(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), torch.zeros(3, 4),
                           torch.zeros(3, dtype=torch.long), torch.Generator())


def test_encode_images_matches_the_encoder_across_chunks_and_keeps_train_mode(generated_set):
    encoder, _ = build_networks(8, 4, generator_for(0, "init"))
    images = generated_set(250).images
    encoder.train()
    latents = encode_images(encoder, images, torch.device("cpu"), batch_size=100)
    assert encoder.training
    assert latents.shape == (250, 8) and latents.dtype == torch.float32
    with torch.no_grad():
        expected = encoder.encode(to_unit_range(images))
    assert torch.allclose(latents, expected, atol=1e-6)


def test_linear_separability_returns_the_probe_keys(generated_set):
    encoder, _ = build_networks(8, 4, generator_for(0, "init"))
    train, test = generated_set(100, 0), generated_set(50, 1)
    result = linear_separability(encoder, train, test, torch.device("cpu"), torch.Generator().manual_seed(0),
                                 epochs=2)
    assert set(result) == KEYS
    assert all(0.0 <= v <= 1.0 for v in result.values())
    assert (result["probe/test_acc"] * 50) == pytest.approx(round(result["probe/test_acc"] * 50), abs=1e-4)
