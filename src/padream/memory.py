"""The hippocampus: a buffer of the latest two Wake batches of latents, replayed during sleep.

The paper mimics hippocampal storage with a plain buffer; what matters for the model is *what* is
replayed: a single episodic memory (NREM) or a convex mix of two days' memories diluted with
spontaneous cortical activity (REM). Both replay rules live here, so the mixing constants exist once.
"""

from __future__ import annotations

import torch


class Hippocampus:
    def __init__(self) -> None:
        self.current: torch.Tensor | None = None
        self.previous: torch.Tensor | None = None

    def store(self, latents: torch.Tensor) -> None:
        """Keep a detached copy: memories are data for later phases, not part of Wake's graph."""
        self.previous = self.current
        self.current = latents.detach().float().clone()

    def replay(self) -> torch.Tensor:
        """The current batch's memories, one per dream (NREM)."""
        if self.current is None:
            raise RuntimeError("the hippocampus is empty: run a Wake phase before sleeping")
        return self.current

    def mix(self, memory_mix: float, noise_mix: float, generator: torch.Generator) -> torch.Tensor:
        """z_mix = noise_mix * (memory_mix * z + (1 - memory_mix) * z_old) + (1 - noise_mix) * eps.

        On the very first cycle there is no previous batch; following the paper's Algorithm 1,
        z_mix = z then (no old memories and no noise). eps ~ N(0, I) is drawn on the CPU from
        `generator` so a seed fixes the dreams on every device. When consecutive batches differ in
        size, old memories are reused cyclically.
        """
        z = self.replay()
        if self.previous is None:
            return z
        n = z.shape[0]
        z_old = self.previous[torch.arange(n, device=z.device) % self.previous.shape[0]]
        eps = torch.randn(z.shape, generator=generator).to(z.device)
        memories = memory_mix * z + (1.0 - memory_mix) * z_old
        return noise_mix * memories + (1.0 - noise_mix) * eps

    def state_dict(self) -> dict[str, torch.Tensor | None]:
        return {"current": self.current, "previous": self.previous}

    def load_state_dict(self, state: dict[str, torch.Tensor | None], device: torch.device | str = "cpu") -> None:
        self.current = None if state["current"] is None else state["current"].to(device)
        self.previous = None if state["previous"] is None else state["previous"].to(device)
