import math

import pytest

from padream.config import CONDITIONS, MAIN_CONDITIONS, ConfigError, TrainConfig, make_config


def test_defaults_are_the_papers():
    config = make_config()
    assert (config.lr, config.beta1, config.beta2, config.batch_size) == (2e-4, 0.5, 0.999, 64)
    assert (config.latent_dim, config.base_channels) == (256, 64)
    assert config.phases == ("wake", "nrem", "rem")
    assert (config.rem_memory_mix, config.rem_noise_mix) == (0.5, 0.5)
    assert (config.probe_lr, config.probe_epochs, config.probe_batch_size) == (0.2, 20, 64)


def test_conditions_transform_the_default():
    assert make_config("no-rem").phases == ("wake", "nrem")
    assert make_config("no-rem").wake_latent_noise_std == pytest.approx(math.sqrt(0.5))
    assert make_config("no-rem").nrem_weight == 0.5
    assert make_config("no-nrem").phases == ("wake", "rem")
    assert make_config("wake-only").phases == ("wake",)
    no_mix = make_config("no-memory-mix")
    assert (no_mix.rem_memory_mix, no_mix.rem_noise_mix) == (1.0, 1.0)
    assert make_config("rem-before-nrem").phases == ("wake", "rem", "nrem")
    assert set(MAIN_CONDITIONS) <= set(CONDITIONS)
    for name in CONDITIONS:
        assert make_config(name).condition == name


def test_overrides_apply_after_the_condition():
    config = make_config("no-rem", nrem_weight=2.0, latent_dim=8)
    assert config.nrem_weight == 2.0 and config.latent_dim == 8 and config.phases == ("wake", "nrem")


@pytest.mark.parametrize("kwargs, match", [
    (dict(condition="pda"), "did you mean 'pad'"),
    (dict(dataset="svnh"), "did you mean 'svhn'"),
    (dict(batch_size=1), "at least 2"),
    (dict(epochs=0), "epochs must be a positive integer"),
    (dict(lr=0.0), "lr must be positive"),
    (dict(rem_noise_mix=1.5), "rem_noise_mix must lie in"),
    (dict(phases=("nrem", "wake")), "must start with 'wake'"),
    (dict(phases=("wake", "rme")), "did you mean 'rem'"),
    (dict(max_steps=0), "max_steps"),
    (dict(nrem_replay="double"), "nrem_replay"),
])
def test_invalid_values_are_rejected(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        TrainConfig(**kwargs)


def test_unknown_names_suggest_the_closest():
    with pytest.raises(ConfigError, match="did you mean 'no-rem'"):
        make_config("no-rme")
    with pytest.raises(ConfigError, match="did you mean 'latent_dim'"):
        make_config("pad", latent_dims=8)
    with pytest.raises(ConfigError, match="unknown config keys: batchsize"):
        TrainConfig.from_dict({"batchsize": 8})


def test_dict_round_trip():
    config = make_config("no-rem", latent_dim=8)
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert TrainConfig.from_dict({**config.to_dict(), "phases": ["wake", "nrem"]}) == config
