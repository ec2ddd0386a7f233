"""One master seed, one CPU torch.Generator per random purpose.

Separate streams mean that, say, turning occlusion off does not reshuffle the data order or change
the REM noise. Streams live on the CPU so that a seed gives the same numbers on every device.
"""

from __future__ import annotations

import hashlib

import torch

STREAMS = ("init", "data", "occlusion", "rem_noise", "nrem_noise", "wake_noise")


def derive_seed(seed: int, *purpose: object) -> int:
    """A 63-bit seed for (seed, purpose...), stable across Python runs (unlike hash())."""
    text = ":".join(str(p) for p in (seed, *purpose)).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little") & ((1 << 63) - 1)


def generator_for(seed: int, *purpose: object) -> torch.Generator:
    return torch.Generator().manual_seed(derive_seed(seed, *purpose))


class RandomStreams:
    def __init__(self, seed: int) -> None:
        for name in STREAMS:
            setattr(self, name, generator_for(seed, name))

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {name: getattr(self, name).get_state() for name in STREAMS}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        missing = set(STREAMS) - set(state)
        if missing:
            raise KeyError(f"checkpoint lacks RNG streams: {', '.join(sorted(missing))}")
        for name in STREAMS:
            getattr(self, name).set_state(state[name])
