"""Sweeps on Ray: every unfinished cell of the grid becomes one Ray task that trains (or resumes) it.

The engine keeps no state of its own. Whether a run is finished, and where an interrupted one
continues, is read from its run folder (done.json, checkpoints) exactly as in a sequential sweep, so:
a worker that dies is simply started again by Ray (``max_retries``) and resumes from its last
checkpoint; a sweep that is stopped picks up where it was when started again; and ``padream report``
reads the same layout. The price is that the driver and every node must see the same run folders,
which a sweep checks before it submits any run.

Ray is an optional dependency (``pip install padream[ray]``) and is imported only when this engine runs.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable

from padream.config import ConfigError
from padream.experiments.grid import Cell, _without_download, is_done, run_cell

STORAGE_CHECK_DIR = ".storage-check"  # under the runs dir; holds one token per sweep while it runs
RUN_LOG = "train.log"  # in each run folder: what the run printed (see RunLog)
CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"
# Stands in for a crashed node in tests: when this variable names a file that exists, the first run to
# have a checkpoint removes the file and SIGKILLs its own worker. Removing it is atomic, so the fault
# fires exactly once however many workers race for it, and the retried run is left alone.
KILL_AFTER_CHECKPOINT_ENV = "PADREAM_KILL_AFTER_CHECKPOINT"
PROBE_TIMEOUT_S = 300.0  # a busy node may need minutes to start a worker
TOKEN_WAIT_S = 10.0  # network file systems may show a new file on another host only after a moment


class EngineError(ConfigError):
    """The Ray engine cannot run as asked (Ray missing, run folders not shared, no node fits a run)."""


def import_ray():
    try:
        import ray
    except ImportError:
        raise EngineError("--engine ray needs Ray, which is not installed: pip install padream[ray]") from None
    return ray


def task_options(train_options: dict[str, Any], cpus_per_run: int, gpus_per_run: float) -> dict[str, Any]:
    """Training options as a task sees them: torch threads match the CPUs Ray reserved (unless --threads
    says otherwise), and the device follows the GPU reservation, because Ray hides the GPUs a task did
    not reserve."""
    if cpus_per_run < 1 or int(cpus_per_run) != cpus_per_run:
        raise ConfigError(f"--cpus-per-run must be a whole number of at least 1, got {cpus_per_run}")
    if gpus_per_run < 0:
        raise ConfigError(f"--gpus-per-run must be 0 or more, got {gpus_per_run}")
    options = _without_download(train_options)
    options["threads"] = options.get("threads") or int(cpus_per_run)
    device = str(options.get("device", "auto"))
    if gpus_per_run == 0:
        if device.startswith("cuda"):
            raise ConfigError(f"--device {device} needs --gpus-per-run above 0: Ray hides GPUs from runs that "
                              f"did not reserve one")
        options["device"] = "cpu"
    elif device == "cpu":
        raise ConfigError("--gpus-per-run reserves GPUs that --device cpu would leave idle; drop one of them")
    elif device == "auto":
        options["device"] = "cuda"
    return options


def run_ray(cells: list[Cell], runs_dir: str | Path, train_options: dict[str, Any], data_root: str | None = None,
            evaluate: bool = True, address: str | None = None, cpus_per_run: int = 1, gpus_per_run: float = 0,
            max_retries: int = 3, log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Run the unfinished cells as Ray tasks; returns one result per cell, in grid order, like run_sequential.

    Without `address` a local Ray instance is started (and stopped at the end); with one, the sweep
    joins that cluster ("auto" finds one started by `ray start` on this machine). A Ray already
    initialised in this process is used as it is.
    """
    if max_retries < 0:
        raise ConfigError(f"--max-retries must be 0 or more, got {max_retries}")
    options = task_options(train_options, cpus_per_run, gpus_per_run)
    ray = import_ray()
    # Workers start in other folders, on other machines: only absolute paths mean the same thing there.
    runs_dir = Path(runs_dir).expanduser().resolve()
    from padream.data import default_data_root
    data_root = str(default_data_root(data_root).expanduser().resolve())

    results: dict[int, dict[str, Any]] = {}
    todo: list[tuple[int, Cell]] = []
    for index, cell in enumerate(cells):
        if is_done(cell, runs_dir, train_options, evaluate):
            results[index] = {"cell": str(cell), "status": "skipped"}
            log(f"[{len(results)}/{len(cells)}] {cell}: already done, skipped")
        else:
            todo.append((index, cell))
    if not todo:
        return [results[i] for i in range(len(cells))]

    started = _connect(ray, address)
    token = None
    pending: dict[Any, tuple[int, Cell]] = {}
    try:
        _check_resources(ray, cpus_per_run, gpus_per_run, strict=address is None)
        datasets = sorted({cell.dataset for _, cell in todo})
        if train_options.get("download"):
            from padream.data import load_dataset
            for name in datasets:  # once, here: tasks downloading into one shared folder would collide
                load_dataset(name, data_root, download=True)
        token = check_shared_storage(ray, runs_dir, data_root, datasets)
        task = ray.remote(_train_cell)
        for index, cell in todo:
            ref = task.options(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=max_retries,
                               retry_exceptions=False, name=f"padream {cell}").remote(
                cell, str(runs_dir), options, data_root, evaluate, str(token))
            pending[ref] = (index, cell)
        log(f"ray: {len(todo)} runs submitted; {cpus_per_run} CPU(s) and {gpus_per_run:g} GPU(s) per run, "
            f"up to {max_retries} retries each")
        while pending:
            [ref], _ = ray.wait(list(pending), num_returns=1)
            index, cell = pending.pop(ref)
            results[index] = _collect(ray, ref, cell, max_retries)
            log(f"[{len(results)}/{len(cells)}] {cell}: {describe(results[index])}")
    finally:
        for ref in pending:  # interrupted: leave no orphan run writing into its folder
            try:
                ray.cancel(ref, force=True)
            except Exception:  # best effort; the driver's exit ends its tasks anyway
                pass
        if token is not None:
            token.unlink(missing_ok=True)
            try:
                token.parent.rmdir()  # unless another sweep on the same runs dir is still running
            except OSError:
                pass
        if started:
            ray.shutdown()
    return [results[i] for i in range(len(cells))]


def _connect(ray, address: str | None) -> bool:
    """Connect to Ray; True when this call started (and so must stop) the connection."""
    if ray.is_initialized():
        return False
    if address is not None:
        _check_reachable(address)
    try:
        if address is None:
            # "local", not None: never attach silently to a cluster someone else started on this machine.
            ray.init(address="local", include_dashboard=False, logging_level="WARNING")
        else:
            ray.init(address=address, logging_level="WARNING")
    except ConnectionError as error:
        raise EngineError(f"cannot join the Ray cluster at '{address}' ({error}); start one with "
                          f"`ray start --head`, or drop --address for a local Ray instance") from None
    return True


def _check_reachable(address: str, timeout: float = 10.0) -> None:
    """Ray keeps retrying an address where nothing listens, for many minutes; fail fast instead."""
    host, _, port = address.rpartition(":")
    if "://" in address or not host or not port.isdigit():
        return  # "auto", "ray://..." and the like: Ray resolves and reports those itself
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as error:
        raise EngineError(f"cannot join the Ray cluster at '{address}' ({error}); start one with "
                          f"`ray start --head`, or drop --address for a local Ray instance") from None


def _check_resources(ray, cpus_per_run: int, gpus_per_run: float, strict: bool) -> None:
    """A run no node can hold would wait forever; say so now. A cluster that autoscales may still add
    such a node, so there it is only a warning."""
    nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
    if any(n.get("CPU", 0) >= cpus_per_run and n.get("GPU", 0) >= gpus_per_run for n in nodes):
        return
    largest = max(nodes, key=lambda n: (n.get("GPU", 0), n.get("CPU", 0)), default={})
    message = (f"no Ray node has {cpus_per_run} CPU(s) and {gpus_per_run:g} GPU(s) for one run (the largest has "
               f"{largest.get('CPU', 0):g} CPU(s), {largest.get('GPU', 0):g} GPU(s)); lower --cpus-per-run / "
               f"--gpus-per-run")
    if strict:
        raise EngineError(message)
    print(f"padream: warning: {message}, or the runs wait until the cluster grows", file=sys.stderr, flush=True)


# -- shared storage ------------------------------------------------------------------------------
def check_shared_storage(ray, runs_dir: Path, data_root: str, datasets: list[str],
                         timeout: float = PROBE_TIMEOUT_S) -> Path:
    """Prove that the driver and every node see the same runs dir, in both directions, and that every
    node finds the data. Returns the driver's token, which each run checks again before it trains
    (nodes may join the cluster after this check); the caller removes it when the sweep ends."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    folder = runs_dir / STORAGE_CHECK_DIR
    try:
        folder.mkdir(parents=True, exist_ok=True)
        sweep = uuid.uuid4().hex[:12]
        token = folder / f"{sweep}.driver"
        token.write_text(f"{sweep} {socket.gethostname()}\n")
    except OSError as error:
        raise EngineError(f"cannot write under --runs-dir {runs_dir} ({error})") from None
    nodes = [node for node in ray.nodes() if node.get("Alive")]
    probe = ray.remote(probe_node)
    refs = {probe.options(num_cpus=0, max_retries=0, scheduling_strategy=NodeAffinitySchedulingStrategy(
        node["NodeID"], soft=False)).remote(str(token), node["NodeID"][:12], data_root, datasets):
            node.get("NodeManagerAddress", node["NodeID"][:12]) for node in nodes}
    try:
        ready, waiting = ray.wait(list(refs), num_returns=len(refs), timeout=timeout)
        if waiting:
            raise EngineError(f"node(s) {', '.join(refs[ref] for ref in waiting)} did not answer the storage check "
                              f"within {timeout:.0f}s; is the cluster healthy (`ray status`)?")
        answers = ray.get(ready)
        check_answers(answers, token)
    except BaseException:
        token.unlink(missing_ok=True)
        raise
    return token


def probe_node(driver_token: str, node: str, data_root: str, datasets: list[str]) -> dict[str, Any]:
    """Runs on one node: can it read what the driver wrote, and write what the driver will read?"""
    from padream.data import SPLITS, candidate_paths

    host = socket.gethostname()
    token = Path(driver_token)
    runs_dir = token.parent.parent
    if not _readable(token):
        return {"host": host, "problem": f"--runs-dir {runs_dir} is not shared: node {host} cannot read {token}, which "
                                         f"the driver wrote; put it on storage every node mounts at the same path"}
    own = token.with_name(token.name.replace(".driver", f".{node}"))
    try:
        own.write_text(f"{token.read_text().split()[0]} {host}\n")
    except OSError as error:
        return {"host": host, "problem": f"node {host} cannot write under --runs-dir {runs_dir} ({error})"}
    for name in datasets:
        for split in SPLITS:
            if not any(path.exists() for path, _ in candidate_paths(name, Path(data_root), split)):
                return {"host": host, "token": str(own),
                        "problem": f"node {host} finds no {name} {split} split under --data-root {data_root}; "
                                   f"put the data on storage every node can read, or at that path on each node"}
    return {"host": host, "token": str(own)}


def check_answers(answers: list[dict[str, Any]], driver_token: Path) -> None:
    """Driver side of the storage check: every node answered well, and its token is visible here."""
    try:
        for answer in answers:
            if answer.get("problem"):
                raise EngineError(answer["problem"])
            if not _readable(Path(answer["token"])):
                raise EngineError(f"--runs-dir {driver_token.parent.parent} is not shared: the driver on "
                                  f"{socket.gethostname()} cannot read {answer['token']}, which node "
                                  f"{answer['host']} wrote; put it on storage every node mounts at the same path")
    finally:
        for answer in answers:
            if answer.get("token"):
                Path(answer["token"]).unlink(missing_ok=True)


def _readable(path: Path) -> bool:
    deadline = time.monotonic() + TOKEN_WAIT_S
    while True:
        try:
            if path.read_text().strip():
                return True
        except OSError:
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.5)


# -- the task ------------------------------------------------------------------------------------
def _train_cell(cell: Cell, runs_dir: str, options: dict[str, Any], data_root: str, evaluate: bool,
                driver_token: str) -> dict[str, Any]:
    """One Ray task: one run, in its own folder. The dataset is loaded here, on the node, rather than
    shipped through Ray's object store (CIFAR-10 alone is 150 MB per copy)."""
    import torch

    from padream.data import load_dataset

    if not _readable(Path(driver_token)):
        raise EngineError(f"--runs-dir {runs_dir} is not shared: node {socket.gethostname()} cannot read "
                          f"{driver_token}; put it on storage every node mounts at the same path")
    torch.set_num_threads(options["threads"])  # also for a cell that is only evaluated
    data = load_dataset(cell.dataset, data_root)
    run_log = RunLog(cell.run_dir(runs_dir))
    with contextlib.redirect_stdout(run_log), contextlib.redirect_stderr(run_log):
        result = run_cell(cell, runs_dir, options, data_root, evaluate, data=data, log=run_log)
    run_log.finish()
    return {**result, "node": socket.gethostname()}


class RunLog(io.TextIOBase):
    """Everything a run says (the Trainer's messages, the evaluation's progress, warnings), appended to
    RUN_DIR/train.log with time, host and process: a worker's own stderr is on another node, and the
    driver prints one line per run. It is a text stream so that stdout and stderr can be sent here.

    Lines wait in memory until the folder holds config.json (or the run has finished): a run killed
    before that must not leave a folder with files but no config, which a resumed run refuses to touch."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__()
        self.run_dir = Path(run_dir)
        self.waiting: list[str] = []
        self.partial = ""

    def __call__(self, message: str) -> None:
        self._add(message)
        _kill_if_armed(self.run_dir)

    def write(self, text: str) -> int:
        self.partial += text
        *lines, self.partial = self.partial.split("\n")
        for line in lines:
            if line.strip():
                self._add(line)
        return len(text)

    def finish(self) -> None:
        """The run is done and its folder complete: write out whatever still waits."""
        if self.partial.strip():
            self._add(self.partial)
        self.partial = ""
        self._save(force=True)

    def _add(self, line: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        self.waiting.append(f"{stamp} {socket.gethostname()} pid {os.getpid()}: {line.rstrip()}\n")
        self._save()

    def _save(self, force: bool = False) -> None:
        if self.waiting and (force or (self.run_dir / CONFIG_FILE).exists()):
            with open(self.run_dir / RUN_LOG, "a") as file:
                file.writelines(self.waiting)
            self.waiting.clear()


def _kill_if_armed(run_dir: Path) -> None:
    trigger = os.environ.get(KILL_AFTER_CHECKPOINT_ENV)
    if not trigger:
        return
    from padream.checkpoint import checkpoint_paths

    if not checkpoint_paths(run_dir / CHECKPOINT_DIR):
        return
    try:
        os.unlink(trigger)
    except FileNotFoundError:  # not armed, or another run took the fault
        return
    os.kill(os.getpid(), signal.SIGKILL)


# -- results -------------------------------------------------------------------------------------
def _collect(ray, ref, cell: Cell, max_retries: int) -> dict[str, Any]:
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as error:  # the run raised: retrying would fail the same way
        cause = error.cause if getattr(error, "cause", None) is not None else error
        message = f"{type(cause).__name__}: {_first_line(cause)}"
    except ray.exceptions.RayError as error:  # the worker or node died every time it was tried
        message = f"{type(error).__name__}: {_first_line(error)} (gave up after {max_retries} retries)"
    return {"cell": str(cell), "status": "failed", "error": message}


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else ""


def describe(result: dict[str, Any]) -> str:
    if result["status"] == "failed":
        return f"FAILED: {result['error']}"
    if result["status"] == "skipped":
        return "already done, skipped"
    acc = result.get("last_epoch", {}).get("probe/test_acc")
    return (f"done in {result['seconds']:.0f}s on {result.get('node', '?')}"
            + (f", read-out test acc {100 * acc:.2f}%" if acc is not None else ""))
