"""Self-describing checkpoints: atomic writes, a checksum beside each file, safe loading.

A checkpoint holds only tensors and plain Python values, so it loads with ``weights_only=True``
and a pickled arbitrary object in its place is refused rather than executed. Each file is written to
a temporary name, fsynced and renamed, and its SHA-256 is written next to it; loading walks back
from the newest file to the newest one that verifies, so a crash mid-write (or a damaged file)
costs at most the work since the previous checkpoint.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import warnings
from pathlib import Path
from typing import Any

import torch

from padream.faults import kill_point

FORMAT_VERSION = 1
KEEP = 2
_NAME = re.compile(r"^step_(\d+)\.pt$")


class CheckpointError(RuntimeError):
    """No usable checkpoint, or one that does not belong to this run."""


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write-then-rename: readers see the old file or the whole new one, never a torn one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as handle:
            half = len(payload) // 2
            handle.write(payload[:half])
            kill_point("checkpoint_write")  # a crash with a half-written file on disk
            handle.write(payload[half:])
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def checkpoint_paths(folder: Path) -> list[Path]:
    """Checkpoint files in the folder, newest (highest step) first."""
    if not Path(folder).is_dir():
        return []
    found = [(int(m.group(1)), p) for p in Path(folder).iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def save_checkpoint(folder: Path, step: int, state: dict[str, Any]) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save({"format_version": FORMAT_VERSION, **state}, buffer)
    payload = buffer.getvalue()
    path = folder / f"step_{step:08d}.pt"
    atomic_write_bytes(path, payload)
    atomic_write_text(path.with_suffix(".sha256"), hashlib.sha256(payload).hexdigest() + "\n")
    for old in checkpoint_paths(folder)[KEEP:]:
        old.unlink(missing_ok=True)
        old.with_suffix(".sha256").unlink(missing_ok=True)
    return path


def load_checkpoint_file(path: Path) -> dict[str, Any]:
    """Load one checkpoint, verifying its checksum when one was written; never unpickles code."""
    path = Path(path)
    payload = path.read_bytes()
    digest_file = path.with_suffix(".sha256")
    if digest_file.exists():
        expected = digest_file.read_text().strip()
        if hashlib.sha256(payload).hexdigest() != expected:
            raise CheckpointError(f"{path}: checksum mismatch (file damaged or truncated)")
    try:
        state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(f"{path}: not a loadable padream checkpoint ({type(error).__name__}: "
                              f"{str(error).splitlines()[0] if str(error) else ''})") from error
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: not a padream checkpoint (format {FORMAT_VERSION} expected)")
    return state


def load_latest_checkpoint(folder: Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint that verifies; damaged newer ones are skipped with a warning."""
    for path in checkpoint_paths(folder):
        try:
            return path, load_checkpoint_file(path)
        except CheckpointError as error:
            warnings.warn(f"skipping damaged checkpoint: {error}", stacklevel=2)
    return None
