"""Run configuration: one frozen dataclass, and the paper's conditions as named transforms of it.

A condition is a function ``TrainConfig -> TrainConfig``. Registering a new one makes it selectable
by ``--condition`` everywhere (train, sweep, report) without touching the training loop.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from typing import Any, Callable

DATASETS = ("cifar10", "svhn")
PRECISIONS = ("auto", "fp32", "bf16")


class ConfigError(ValueError):
    """A configuration value or name that cannot be used; the message says how to fix it."""


def closest(name: str, options) -> str:
    """A 'did you mean' suffix for an unknown name, or '' when nothing is close."""
    match = difflib.get_close_matches(name, list(options), n=1, cutoff=0.5)
    return f" (did you mean '{match[0]}'?)" if match else ""


@dataclass(frozen=True)
class TrainConfig:
    # What to train on, and how long.
    dataset: str = "cifar10"
    condition: str = "pad"
    epochs: int = 50
    seed: int = 0
    max_steps: int | None = None

    # Optimisation (paper: Adam lr 2e-4, betas (0.5, 0.999), batch 64).
    batch_size: int = 64
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999

    # Network size. The paper's is latent_dim=256, base_channels=64 (64/128/256 trunk).
    latent_dim: int = 256
    base_channels: int = 64

    # Phases run in this order in every wake-sleep cycle; names refer to padream.phases.PHASES.
    phases: tuple[str, ...] = ("wake", "nrem", "rem")

    # Wake. latent_noise_std > 0 adds N(0, std^2 I) to the latents fed to the generator
    # (the paper's no-REM stabiliser, Eq. 12); the stored memories stay noise-free.
    rec_weight: float = 1.0
    kl_weight: float = 1.0
    real_weight: float = 1.0
    wake_latent_noise_std: float = 0.0

    # NREM: occlusion probability ~ U(0, max_probability), square size ~ U{1..max_size}.
    nrem_weight: float = 1.0
    occlusion_max_probability: float = 1.0
    occlusion_max_size: int = 8
    occlusion_per_image: bool = False
    nrem_replay: str = "single"  # "single" memory, or "mixed" like REM (Appendix 1, fig. 6)

    # REM: z_mix = noise_mix * (memory_mix * z + (1 - memory_mix) * z_old) + (1 - noise_mix) * eps.
    rem_weight: float = 1.0
    rem_memory_mix: float = 0.5
    rem_noise_mix: float = 0.5

    # Linear read-out (paper: SGD lr 0.2, batch 64, 20 epochs).
    probe_every_epoch: bool = True
    probe_epochs: int = 20
    probe_lr: float = 0.2
    probe_batch_size: int = 64

    # Dream pictures (Fig. 3) are saved to RUN_DIR/dreams/ after these epochs and after the last one.
    dream_epochs: tuple[int, ...] = (1,)

    # Execution. "auto" picks CUDA when present; precision "auto" is bf16 where the hardware has it.
    device: str = "auto"
    precision: str = "auto"
    threads: int | None = None

    def __post_init__(self) -> None:
        validate(self)

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            hints = "".join(closest(u, known) for u in unknown[:1])
            raise ConfigError(f"unknown config keys: {', '.join(unknown)}{hints}")
        values = dict(values)
        for key in ("phases", "dream_epochs"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


def validate(config: TrainConfig) -> None:
    """Reject values that would fail later, deep inside a run, with a less helpful message."""
    from padream.phases import PHASES  # local: phases imports this module

    if config.dataset not in DATASETS:
        raise ConfigError(f"unknown dataset '{config.dataset}'{closest(config.dataset, DATASETS)}; "
                          f"choose from {', '.join(DATASETS)}")
    if config.condition not in CONDITIONS:
        raise ConfigError(f"unknown condition '{config.condition}'{closest(config.condition, CONDITIONS)}; "
                          f"choose from {', '.join(CONDITIONS)}")
    if config.precision not in PRECISIONS:
        raise ConfigError(f"unknown precision '{config.precision}'; choose from {', '.join(PRECISIONS)}")
    for name in ("epochs", "batch_size", "latent_dim", "base_channels", "probe_epochs",
                 "probe_batch_size", "occlusion_max_size"):
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    if config.batch_size < 2:
        raise ConfigError("batch_size must be at least 2: the KL term needs a batch standard deviation")
    for name in ("lr", "probe_lr"):
        if not getattr(config, name) > 0:
            raise ConfigError(f"{name} must be positive, got {getattr(config, name)!r}")
    if config.max_steps is not None and config.max_steps < 1:
        raise ConfigError(f"max_steps must be at least 1, got {config.max_steps}")
    for name in ("rem_memory_mix", "rem_noise_mix", "occlusion_max_probability", "beta1", "beta2"):
        if not 0.0 <= getattr(config, name) <= 1.0:
            raise ConfigError(f"{name} must lie in [0, 1], got {getattr(config, name)!r}")
    if config.wake_latent_noise_std < 0:
        raise ConfigError("wake_latent_noise_std must be >= 0")
    if config.nrem_replay not in ("single", "mixed"):
        raise ConfigError(f"nrem_replay must be 'single' or 'mixed', got '{config.nrem_replay}'")
    if not config.phases or config.phases[0] != "wake":
        raise ConfigError("phases must start with 'wake': sleep phases replay what Wake stored")
    for phase in config.phases:
        if phase not in PHASES:
            raise ConfigError(f"unknown phase '{phase}'{closest(phase, PHASES)}; choose from {', '.join(PHASES)}")


# ---------------------------------------------------------------------------------------------
# Conditions: the paper's main and appendix variants, as transforms of the default (PAD) config.

Condition = Callable[[TrainConfig], TrainConfig]
CONDITIONS: dict[str, Condition] = {}
# Human-readable labels used in figures and the report.
CONDITION_LABELS: dict[str, str] = {}

# The paper writes the no-REM noise as N(0, 0.5 I): read as a variance of 0.5, so std = sqrt(0.5).
NO_REM_NOISE_STD = 0.5 ** 0.5


def register_condition(name: str, label: str | None = None) -> Callable[[Condition], Condition]:
    def decorate(transform: Condition) -> Condition:
        CONDITIONS[name] = transform
        CONDITION_LABELS[name] = label or name
        return transform

    return decorate


@register_condition("pad", "PAD")
def _pad(config: TrainConfig) -> TrainConfig:
    return config


@register_condition("no-rem", "w/o REM")
def _no_rem(config: TrainConfig) -> TrainConfig:
    # Methods, 'Modifications specific to pathological models': noise on Wake latents and NREM x 0.5.
    return config.replace(phases=("wake", "nrem"), wake_latent_noise_std=NO_REM_NOISE_STD, nrem_weight=0.5)


@register_condition("no-nrem", "w/o NREM")
def _no_nrem(config: TrainConfig) -> TrainConfig:
    return config.replace(phases=("wake", "rem"))


@register_condition("no-memory-mix", "w/o memory mix")
def _no_memory_mix(config: TrainConfig) -> TrainConfig:
    # REM driven by the current memory alone, without noise.
    return config.replace(rem_memory_mix=1.0, rem_noise_mix=1.0)


@register_condition("wake-only", "Wake only")
def _wake_only(config: TrainConfig) -> TrainConfig:
    return config.replace(phases=("wake",))


@register_condition("rem-noise-only", "REM from noise only")
def _rem_noise_only(config: TrainConfig) -> TrainConfig:
    return config.replace(rem_noise_mix=0.0)


@register_condition("rem-memories-only", "REM from mixed memories only")
def _rem_memories_only(config: TrainConfig) -> TrainConfig:
    return config.replace(rem_noise_mix=1.0)


@register_condition("rem-before-nrem", "Wake-REM-NREM")
def _rem_before_nrem(config: TrainConfig) -> TrainConfig:
    return config.replace(phases=("wake", "rem", "nrem"))


@register_condition("nrem-mixed", "NREM from mixed memories")
def _nrem_mixed(config: TrainConfig) -> TrainConfig:
    return config.replace(nrem_replay="mixed")


MAIN_CONDITIONS = ("pad", "no-memory-mix", "no-rem", "no-nrem", "wake-only")


def make_config(condition: str = "pad", **overrides: Any) -> TrainConfig:
    """The default config with a named condition applied, then explicit overrides on top."""
    if condition not in CONDITIONS:
        raise ConfigError(f"unknown condition '{condition}'{closest(condition, CONDITIONS)}; "
                          f"choose from {', '.join(CONDITIONS)}")
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(f"unknown config keys: {', '.join(unknown)}{closest(unknown[0], known)}")
    base = TrainConfig(condition=condition)
    return CONDITIONS[condition](base).replace(**overrides)

