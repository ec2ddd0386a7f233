import hashlib

import pytest
import torch

from padream.rng import STREAMS, RandomStreams, derive_seed, generator_for


def test_derive_seed_is_a_stable_hash():
    digest = hashlib.sha256(b"3:rem_noise").digest()
    assert derive_seed(3, "rem_noise") == int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)
    assert derive_seed(3, "probe", 5) != derive_seed(3, "probe", 6)
    assert torch.equal(torch.rand(4, generator=generator_for(1, "x")), torch.rand(4, generator=generator_for(1, "x")))


def test_streams_are_independent_and_restorable():
    streams = RandomStreams(0)
    draws = {name: torch.rand(3, generator=getattr(streams, name)) for name in STREAMS}
    assert len({tuple(v.tolist()) for v in draws.values()}) == len(STREAMS)
    saved = streams.state_dict()
    torch.rand(100, generator=streams.occlusion)  # using one stream leaves the others alone
    restored = RandomStreams(42)
    restored.load_state_dict(saved)
    assert torch.equal(torch.rand(5, generator=restored.rem_noise), torch.rand(5, generator=streams.rem_noise))
    assert not torch.equal(torch.rand(5, generator=restored.occlusion), torch.rand(5, generator=streams.occlusion))
    with pytest.raises(KeyError, match="wake_noise"):
        RandomStreams(0).load_state_dict({k: v for k, v in saved.items() if k != "wake_noise"})
