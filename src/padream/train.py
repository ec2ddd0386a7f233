"""The training loop: wake-sleep cycles over shuffled mini-batches, a read-out per epoch, checkpoints.

Run folder layout::

    RUN_DIR/config.json       resolved config (+ device, precision, versions)
    RUN_DIR/metrics.jsonl     one JSON object per epoch, rewritten atomically from the checkpoint
    RUN_DIR/checkpoints/      step_XXXXXXXX.pt (+ .sha256); the newest two are kept

The checkpoint carries the metrics history, so metrics.jsonl always agrees with the checkpoint a
resume starts from: an epoch lost to a crash is neither half-written nor duplicated.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm.auto import tqdm

from padream import __version__
from padream.checkpoint import (CheckpointError, atomic_write_text, checkpoint_paths, load_latest_checkpoint,
                                save_checkpoint)
from padream.config import ConfigError, TrainConfig
from padream.data import ImageSet, load_dataset, to_unit_range
from padream.device import autocast_factory, resolve_device, resolve_precision
from padream.eval.linear_probe import linear_separability
from padream.faults import kill_point
from padream.memory import Hippocampus
from padream.networks import build_networks
from padream.phases import Cycle, phase_of, run_cycle
from padream.rng import RandomStreams, generator_for

CHECKPOINT_DIR = "checkpoints"
METRICS_FILE = "metrics.jsonl"
CONFIG_FILE = "config.json"
# Config fields a resumed run may change without changing what is learned.
RESUMABLE_CHANGES = frozenset({"epochs", "max_steps", "device", "threads", "probe_every_epoch", "dream_epochs"})
DREAMS_DIR = "dreams"


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or infinite; the run stops and the last good checkpoint is kept."""


class RunDirError(RuntimeError):
    """The run folder cannot be used as asked (not empty without --resume, nothing to resume, ...)."""


@dataclass
class EpochProgress:
    """Where in the current epoch a run stands; saved so a mid-epoch stop resumes exactly."""

    order: torch.Tensor | None = None  # this epoch's permutation of the training set
    position: int = 0  # batches of `order` already trained on
    sums: dict[str, float] | None = None  # running sums of the epoch's metrics over `position` batches
    seconds: float = 0.0


def probe_generator(seed: int, step: int) -> torch.Generator:
    """The read-out's randomness is a function of (seed, step) alone, so evaluating more or less often
    (or at a smoke run's early stop) never shifts any training stream."""
    return generator_for(seed, "probe", step)


def build_cycle(config: TrainConfig, device: torch.device, autocast) -> Cycle:
    """Fresh networks, optimizers, memory and RNG streams for `config`, ready for run_cycle."""
    rngs = RandomStreams(config.seed)
    encoder, generator = build_networks(config.latent_dim, config.base_channels, rngs.init)
    encoder.to(device)
    generator.to(device)
    # fused Adam: one kernel per parameter tensor instead of a dozen; same update rule.
    adam = dict(lr=config.lr, betas=(config.beta1, config.beta2), fused=True)
    return Cycle(config, encoder, generator, torch.optim.Adam(encoder.parameters(), **adam),
                 torch.optim.Adam(generator.parameters(), **adam), Hippocampus(), rngs, autocast)


class Trainer:
    def __init__(self, config: TrainConfig, run_dir: str | os.PathLike, data_root: str | None = None,
                 resume: bool = False, progress: bool = True, download: bool = False,
                 data: tuple[ImageSet, ImageSet] | None = None,
                 log: Callable[[str], None] | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.progress = progress
        self.log = log or (lambda message: print(message, file=sys.stderr))
        # Everything that can be checked is checked before the run folder is touched.
        self.device = resolve_device(config.device)
        self.precision = resolve_precision(config.precision, self.device)
        self.autocast = autocast_factory(self.device, self.precision)
        train, test = data if data is not None else load_dataset(config.dataset, data_root, download)
        if len(train) < config.batch_size:
            raise ConfigError(f"the training split has {len(train)} images, fewer than one batch of "
                              f"{config.batch_size}; lower --batch-size")
        self.config = self._prepare_run_dir(config, resume)
        self._lock = RunLock(self.run_dir)
        if self.config.threads:
            torch.set_num_threads(self.config.threads)
        self.train_set, self.test_set = train.to(self.device), test.to(self.device)

        self.cycle = build_cycle(self.config, self.device, self.autocast)
        self.rngs, self.memory = self.cycle.rngs, self.cycle.memory
        self.encoder, self.generator = self.cycle.encoder, self.cycle.generator
        self.encoder_optimizer, self.generator_optimizer = self.cycle.encoder_optimizer, self.cycle.generator_optimizer
        self.epoch = 0  # completed epochs
        self.step = 0  # completed cycles
        self.progress_in_epoch = EpochProgress()
        self.history: list[dict[str, Any]] = []
        if resume:
            self._restore()
        self._write_config()

    # -- run folder ---------------------------------------------------------------------------
    def _prepare_run_dir(self, config: TrainConfig, resume: bool) -> TrainConfig:
        if self.run_dir.exists() and not self.run_dir.is_dir():
            raise RunDirError(f"run folder {self.run_dir} exists and is not a folder")
        exists = self.run_dir.exists() and any(self.run_dir.iterdir())
        if not resume:
            if exists:
                raise RunDirError(f"run folder {self.run_dir} is not empty: pass --resume to continue it, "
                                  f"or choose another --run-dir")
            make_writable_dir(self.run_dir)
            return config
        saved = self.run_dir / CONFIG_FILE
        if not saved.exists():
            if exists:
                raise RunDirError(f"cannot resume {self.run_dir}: it holds files but no {CONFIG_FILE}, "
                                  f"so it is not a padream run folder")
            self.log(f"nothing to resume in {self.run_dir}: starting a new run")
            make_writable_dir(self.run_dir)
            return config
        stored = json.loads(saved.read_text())["config"]
        check_resumable(TrainConfig.from_dict(stored), config)
        make_writable_dir(self.run_dir)
        return config

    def _write_config(self) -> None:
        payload = {"config": self.config.to_dict(), "device": str(self.device), "precision": self.precision,
                   "padream": __version__, "torch": torch.__version__,
                   "train_images": len(self.train_set), "test_images": len(self.test_set)}
        atomic_write_text(self.run_dir / CONFIG_FILE, json.dumps(payload, indent=2, sort_keys=True) + "\n")

    # -- state --------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        p = self.progress_in_epoch
        return {
            "config": self.config.to_dict(),
            "encoder": self.encoder.state_dict(), "generator": self.generator.state_dict(),
            "encoder_optimizer": self.encoder_optimizer.state_dict(),
            "generator_optimizer": self.generator_optimizer.state_dict(),
            "memory": self.memory.state_dict(), "rng": self.rngs.state_dict(),
            "epoch": self.epoch, "step": self.step,
            "epoch_order": None if p.order is None else p.order.cpu(), "epoch_position": p.position,
            "epoch_sums": p.sums, "epoch_seconds": p.seconds,
            "history": self.history,
        }

    def _restore(self) -> None:
        found = load_latest_checkpoint(self.run_dir / CHECKPOINT_DIR)
        if found is None:
            if checkpoint_paths(self.run_dir / CHECKPOINT_DIR):
                # Starting over would overwrite metrics.jsonl: refuse, and let a person look first.
                raise CheckpointError(f"no checkpoint in {self.run_dir / CHECKPOINT_DIR} can be loaded (all damaged "
                                      f"or not padream checkpoints); move them away to start the run over")
            return  # a run killed before its first checkpoint starts over
        path, state = found
        check_resumable(TrainConfig.from_dict(state["config"]), self.config)
        try:
            self.encoder.load_state_dict(state["encoder"])
            self.generator.load_state_dict(state["generator"])
        except RuntimeError as error:
            raise CheckpointError(f"{path} does not fit this model: {error}") from error
        self.encoder_optimizer.load_state_dict(state["encoder_optimizer"])
        self.generator_optimizer.load_state_dict(state["generator_optimizer"])
        self.memory.load_state_dict(state["memory"], self.device)
        self.rngs.load_state_dict(state["rng"])
        self.epoch, self.step = state["epoch"], state["step"]
        order = state["epoch_order"]
        self.progress_in_epoch = EpochProgress(
            None if order is None else order.to(self.device), state["epoch_position"],
            state["epoch_sums"], state["epoch_seconds"])
        self.history = [row for row in state["history"] if not row.get("partial")]
        self._write_metrics()
        self.log(f"resumed from {path} (epoch {self.epoch}, step {self.step})")

    def _write_metrics(self) -> None:
        lines = "".join(json.dumps(row, sort_keys=True) + "\n" for row in self.history)
        atomic_write_text(self.run_dir / METRICS_FILE, lines)

    def _checkpoint(self) -> None:
        save_checkpoint(self.run_dir / CHECKPOINT_DIR, self.step, self.state_dict())
        self._write_metrics()

    # -- training -----------------------------------------------------------------------------
    @property
    def steps_per_epoch(self) -> int:
        return len(self.train_set) // self.config.batch_size  # the paper's epoch: full batches only

    def _budget_left(self) -> bool:
        return self.config.max_steps is None or self.step < self.config.max_steps

    def evaluate(self) -> dict[str, float]:
        cfg = self.config
        start = time.perf_counter()
        kill_point("probe")
        result = linear_separability(self.encoder, self.train_set, self.test_set, self.device,
                                     probe_generator(cfg.seed, self.step), self.autocast,
                                     epochs=cfg.probe_epochs, lr=cfg.probe_lr, batch_size=cfg.probe_batch_size)
        return {**result, "probe_seconds": time.perf_counter() - start}

    def save_dreams(self) -> None:
        """Wake inputs, NREM and REM dreams of fixed images and noise: RUN_DIR/dreams/epoch_XXXX.png."""
        from padream.eval.dreams import dream_grids, fixed_dream_inputs, fixed_dream_noise

        wake, old = fixed_dream_inputs(self.train_set.images)
        dream_grids(self.encoder, self.generator, wake, old, self.run_dir / DREAMS_DIR / f"epoch_{self.epoch:04d}.png",
                    fixed_dream_noise(), self.device, self.config.rem_memory_mix, self.config.rem_noise_mix,
                    autocast=self.autocast)

    def train_epoch(self) -> bool:
        """Train until the epoch ends (True) or the step budget runs out (False)."""
        cfg, p = self.config, self.progress_in_epoch
        if p.order is None:
            p.order = torch.randperm(len(self.train_set), generator=self.rngs.data).to(self.device)
            p.position, p.sums, p.seconds = 0, {}, 0.0
        sums = {k: torch.tensor(v, dtype=torch.float64, device=self.device) for k, v in p.sums.items()}
        bar = tqdm(total=self.steps_per_epoch, initial=p.position, desc=f"epoch {self.epoch + 1}/{cfg.epochs}",
                   disable=not self.progress, leave=False, dynamic_ncols=True)
        start = time.perf_counter()
        try:
            while p.position < self.steps_per_epoch and self._budget_left():
                index = p.order[p.position * cfg.batch_size:(p.position + 1) * cfg.batch_size]
                metrics = run_cycle(self.cycle, to_unit_range(self.train_set.images[index]))
                kill_point("step")
                values = torch.stack([v.float() for v in metrics.values()])
                if not bool(torch.isfinite(values).all()):
                    bad = [k for k, v in metrics.items() if not torch.isfinite(v)]
                    first = next((p for p in cfg.phases if p in {phase_of(k) for k in bad}), "?")
                    raise NonFiniteLossError(
                        f"non-finite loss in phase {first} at step {self.step + 1} (epoch {self.epoch + 1}): "
                        f"{', '.join(bad)}; the run stopped and its last checkpoint is kept")
                for key, value in metrics.items():
                    sums[key] = sums.get(key, 0.0) + value.double()
                p.position += 1
                self.step += 1
                bar.update(1)
                if p.position % 50 == 0:
                    bar.set_postfix({k.split("/")[-1]: f"{float(v) / p.position:.3f}" for k, v in sums.items()
                                     if k.startswith("loss/")}, refresh=False)
        finally:
            bar.close()
            p.seconds += time.perf_counter() - start
            p.sums = {k: float(v) for k, v in sums.items()}
        return p.position >= self.steps_per_epoch

    def _epoch_row(self, partial: bool) -> dict[str, Any]:
        p = self.progress_in_epoch
        row: dict[str, Any] = {"epoch": self.epoch + int(partial), "step": self.step,
                               "seconds": round(p.seconds, 3)}
        row.update({k: v / max(p.position, 1) for k, v in sorted((p.sums or {}).items())})
        if partial:
            row["partial"] = True
        if self.config.probe_every_epoch or partial:
            row.update(self.evaluate())
        return row

    def run(self) -> list[dict[str, Any]]:
        """Train to `epochs` (or `max_steps`), checkpointing after every epoch; returns the metrics."""
        try:
            return self._run()
        finally:
            self.close()

    def close(self) -> None:
        """Release the run folder for other processes (run() does this when it returns or fails)."""
        self._lock.release()

    def _run(self) -> list[dict[str, Any]]:
        cfg = self.config
        self.log(f"training {cfg.condition} on {cfg.dataset} ({len(self.train_set)} images, "
                 f"{self.steps_per_epoch} steps/epoch) on {self.device} in {self.precision}; "
                 f"config in {self.run_dir / CONFIG_FILE}")
        while self.epoch < cfg.epochs and self._budget_left():
            if not self.train_epoch():
                break
            self.epoch += 1
            row = self._epoch_row(partial=False)
            self.progress_in_epoch = EpochProgress()
            self.history.append(row)
            if self.epoch in cfg.dream_epochs or self.epoch == cfg.epochs:
                self.save_dreams()  # before the checkpoint: a crash in between redoes both
            self._checkpoint()
            self.log(format_row(row))
        if self.progress_in_epoch.order is not None and self.progress_in_epoch.position > 0:
            # Stopped by --max-steps inside an epoch: keep the exact position, report a partial epoch.
            row = self._epoch_row(partial=True)
            self.history.append(row)
            self._checkpoint()
            self.log(format_row(row))
        return self.history


class RunLock:
    """An exclusive lock on RUN_DIR/.lock while a process trains in the folder.

    Two processes resuming the same run (two sweeps over one runs folder, a retry racing the original)
    would interleave checkpoints; the second one is refused instead. The operating system drops the
    lock when its holder dies, so a killed run never leaves a stale lock behind.
    """

    def __init__(self, folder: Path) -> None:
        import fcntl

        self._handle = open(folder / ".lock", "a+")
        try:
            fcntl.flock(self._handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._handle.close()
            raise RunDirError(f"run folder {folder} is in use by another padream process; "
                              f"wait for it to finish or stop it first") from None

    def release(self) -> None:
        if not self._handle.closed:
            self._handle.close()  # closing the file releases the lock

    def __del__(self) -> None:
        self.release()


def make_writable_dir(folder: Path) -> None:
    """Create the folder and prove it takes files now, not an epoch later when the first checkpoint is due."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise RunDirError(f"run folder {folder} is not writable ({error.strerror or error})") from error


def check_resumable(stored: TrainConfig, requested: TrainConfig) -> None:
    differing = sorted(k for k, v in stored.to_dict().items()
                       if k not in RESUMABLE_CHANGES and requested.to_dict()[k] != v)
    if differing:
        details = "; ".join(f"{k}: saved {stored.to_dict()[k]!r}, requested {requested.to_dict()[k]!r}"
                            for k in differing)
        raise CheckpointError(f"cannot resume: the run was made with a different config ({details})")


def format_row(row: dict[str, Any]) -> str:
    parts = [f"epoch {row['epoch']}" + (" (partial)" if row.get("partial") else ""), f"step {row['step']}",
             f"{row['seconds']:.1f}s"]
    if "probe/test_acc" in row:
        parts.append(f"read-out test acc {100 * row['probe/test_acc']:.2f}% "
                     f"(train {100 * row['probe/train_acc']:.2f}%, {row['probe_seconds']:.1f}s)")
    return " | ".join(parts)

