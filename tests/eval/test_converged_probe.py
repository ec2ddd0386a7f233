import warnings

import numpy as np
import pytest
import torch

from padream.eval.converged_probe import KEYS, converged_probe, fit_logistic_regression, standardise


def balanced_labels(count: int, seed: int) -> torch.Tensor:
    labels = torch.arange(count) % 10
    return labels[torch.randperm(count, generator=torch.Generator().manual_seed(seed))]


def labelled_latents(labels: torch.Tensor, seed: int, dim: int = 16, noise: float = 0.05) -> torch.Tensor:
    """The label's one-hot vector in the first 10 dimensions, plus Gaussian noise."""
    z = noise * torch.randn(labels.shape[0], dim, generator=torch.Generator().manual_seed(seed))
    z[:, :10] += torch.nn.functional.one_hot(labels, 10).float()
    return z


def test_separable_latents_are_read_out_perfectly():
    train_labels, test_labels = balanced_labels(500, 0), balanced_labels(1003, 1)
    result = converged_probe(labelled_latents(train_labels, 2), train_labels, labelled_latents(test_labels, 3),
                             test_labels, torch.Generator().manual_seed(0))
    assert set(result) == set(KEYS)
    assert result["converged/train_acc"] == 1.0
    assert result["converged/test_acc"] == 1.0
    assert result["converged/C"] in result["converged/C_grid"] == [0.01, 0.1, 1.0, 10.0]
    assert len(result["converged/validation_acc"]) == 4 and result["converged/fit_converged"] is True


def test_constant_latents_give_the_share_of_one_class():
    train_labels, test_labels = balanced_labels(500, 0), balanced_labels(1000, 1)
    result = converged_probe(torch.ones(500, 16), train_labels, torch.ones(1000, 16), test_labels,
                             torch.Generator().manual_seed(0))
    assert result["converged/test_acc"] == pytest.approx(0.1, abs=1e-9)


def test_noise_latents_give_chance_on_the_test_set():
    generator = torch.Generator().manual_seed(4)
    train_labels, test_labels = balanced_labels(1000, 0), balanced_labels(2000, 1)
    result = converged_probe(torch.randn(1000, 16, generator=generator), train_labels,
                             torch.randn(2000, 16, generator=generator), test_labels, torch.Generator().manual_seed(0))
    assert abs(result["converged/test_acc"] - 0.1) < 0.03  # 4.5 standard errors at n = 2000


def test_the_fit_matches_scikit_learn_at_the_same_C():
    sklearn = pytest.importorskip("sklearn.linear_model")
    generator = torch.Generator().manual_seed(5)
    labels = torch.randint(0, 4, (300,), generator=generator)
    latents = torch.randn(300, 6, generator=generator) + 0.8 * torch.nn.functional.one_hot(labels, 6).float()
    (x,) = standardise(latents)
    for C in (0.05, 3.0):
        ours = fit_logistic_regression(x, labels, C, tol=1e-9, matmul_dtype=torch.float64)
        theirs = sklearn.LogisticRegression(C=C, tol=1e-12, max_iter=10_000).fit(x.numpy(), labels.numpy())
        probabilities = torch.softmax(x @ ours.weight.T + ours.bias, dim=1).numpy()
        assert ours.converged
        np.testing.assert_allclose(probabilities, theirs.predict_proba(x.numpy()), atol=1e-5)


def test_warm_start_reaches_the_same_minimum():
    generator = torch.Generator().manual_seed(6)
    labels = torch.randint(0, 3, (200,), generator=generator)
    (x,) = standardise(torch.randn(200, 5, generator=generator) + torch.nn.functional.one_hot(labels, 5).float())
    cold = fit_logistic_regression(x, labels, 1.0, tol=1e-9, matmul_dtype=torch.float64)
    start = fit_logistic_regression(x, labels, 0.01, tol=1e-9, matmul_dtype=torch.float64)
    warm = fit_logistic_regression(x, labels, 1.0, init=start, tol=1e-9, matmul_dtype=torch.float64)
    torch.testing.assert_close(warm.weight, cold.weight, atol=1e-6, rtol=0)


def test_a_class_missing_from_training_is_never_predicted():
    train_labels = balanced_labels(300, 0) % 5  # classes 0..4 only
    test_labels = balanced_labels(100, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no convergence warning: absent classes are not fitted
        result = converged_probe(labelled_latents(train_labels, 2), train_labels, labelled_latents(test_labels, 3),
                                 test_labels, torch.Generator().manual_seed(0))
    assert result["converged/test_acc"] == pytest.approx(0.5)  # classes 5..9 are half of the balanced test set


def test_the_held_out_split_comes_from_the_generator():
    train_labels, test_labels = balanced_labels(200, 0), balanced_labels(100, 1)
    train, test = labelled_latents(train_labels, 2, noise=1.0), labelled_latents(test_labels, 3, noise=1.0)
    runs = [converged_probe(train, train_labels, test, test_labels, torch.Generator().manual_seed(seed))
            for seed in (0, 0, 1)]
    assert runs[0] == runs[1]
    assert runs[0]["converged/validation_acc"] != runs[2]["converged/validation_acc"]


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="C must be positive"):
        fit_logistic_regression(torch.zeros(3, 2), torch.tensor([0, 1, 0]), 0.0)
    with pytest.raises(ValueError, match="validation_fraction"):
        converged_probe(torch.zeros(4, 2), torch.tensor([0, 1, 0, 1]), torch.zeros(2, 2), torch.tensor([0, 1]),
                        torch.Generator(), validation_fraction=1.0)
