"""Deterministic crash injection, for testing that a run killed anywhere resumes to the same result.

Set ``PADREAM_KILL_AT=POINT:N`` and the process SIGKILLs itself the N-th time it reaches POINT
(``step``, ``checkpoint_write``, ``probe``). Unset (always, outside tests), ``kill_point`` is one
dictionary lookup. SIGKILL rather than an exception: nothing gets to clean up, as in a real crash.
"""

from __future__ import annotations

import os
import signal

ENV = "PADREAM_KILL_AT"
POINTS = ("step", "checkpoint_write", "probe")
_counts: dict[str, int] = {}


def kill_point(name: str) -> None:
    spec = os.environ.get(ENV)
    if not spec:
        return
    point, _, count = spec.partition(":")
    if point != name:
        return
    _counts[name] = _counts.get(name, 0) + 1
    if _counts[name] == int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)
