"""One epoch of the project (``train.py``'s trainer) against a bare PyTorch loop, side by side.

Both train the same network (``fmnist_cnn``, channels-last weights), loss (the run's, PF-loss
by default), optimiser (Adam, lr 0.001) and data (Fashion-MNIST step split at IR=100, batch 500,
the run's own batches), with the same threads and precision, and both time the training epoch
plus its validation pass:

- ``project``: the trainer ``train.py`` builds (the composed config: callbacks with
  ``best.ckpt`` selection on validation G-mean and the resumable ``last.ckpt``, the CSV log,
  the NaN guard, the batch statistics, the run state), epochs timed from one epoch start to the
  next;
- ``bare``: ``for x, y in batches: forward, loss, backward, Adam step``, then the forward pass
  of the validation split.

The first epoch of each is a warm-up and not timed; ``--rounds`` alternations (project, bare,
project, ...) give the median epoch of each, and the ratio project / bare. A last,
instrumented project epoch splits the time into data, forward, loss, backward, optimiser,
NaN guard, batch statistics, validation, logging and checkpointing (the shares of that epoch,
whose timers add a little). Times are the process's CPU time by default (``--clock cpu``: on a
machine shared with other work it counts this process's work alone; with one thread it is the
epoch's time on a core), or wall time (``--clock wall``). Like ``train.py`` it runs with glibc
malloc tuned. Run:

    .venv/bin/python benchmarks/bench_epoch.py [--precisions 32-true,bf16-mixed]
        [--threads 1,2] [--epochs 2] [--rounds 3] [--dataset fashion_mnist] [--clock cpu]
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from imbloss.runtime import ensure_malloc_tuning

ensure_malloc_tuning()

import lightning as L  # noqa: E402  (after the allocator set-up)
import torch  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from hydra.core.global_hydra import GlobalHydra  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from hydra.utils import instantiate  # noqa: E402
from omegaconf import DictConfig, open_dict  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cpu_info import describe_cpu  # noqa: E402
from imbloss.loggers import build_loggers  # noqa: E402
from imbloss.multirun.sweeps import register_resolvers  # noqa: E402
from imbloss.pipeline import build_datamodule, build_module  # noqa: E402
from imbloss.runs.resume import AtomicCheckpointIO, RunState  # noqa: E402

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
PARTS = (
    "data",
    "forward",
    "loss",
    "backward",
    "optimiser",
    "NaN guard",
    "batch stats",
    "validation",
    "logging",
    "checkpointing",
)
OWN_PARTS = ("logging", "checkpointing")  # counted as themselves also within a validation
CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}
_clock = CLOCKS["cpu"]


def now() -> float:
    """The benchmark's clock (``--clock``): the process's CPU time (the default: on a machine
    shared with other work it counts this process's work alone) or wall time."""
    return _clock()


def compose_cfg(overrides: list[str], folder: Path) -> DictConfig:
    """``conf/train.yaml`` with ``overrides``, its outputs in ``folder`` (made current)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.paths.output_dir = str(folder)
        cfg.hydra.runtime.output_dir = str(folder)
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    return cfg


class EpochClock(L.Callback):
    """The wall time of each epoch: from one epoch's start to the next (the last one: to the end
    of the fit), so validation, logging and checkpointing count in the epoch they follow."""

    def __init__(self) -> None:
        self.starts: list[float] = []
        self.end = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.starts.append(now())

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.end = now()

    def epochs(self) -> list[float]:
        marks = [*self.starts, self.end]
        return [b - a for a, b in itertools.pairwise(marks)]


class PartTimer:
    """Accumulated seconds per part; ``wrap`` times an object's method under a part's name."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.validating = False

    @contextmanager
    def part(self, name: str) -> Iterator[None]:
        """Time the block as ``name``; during validation only the parts of ``OWN_PARTS`` count
        (taken out of the validation's time), the rest is the validation's."""
        start = now()
        try:
            yield
        finally:
            if not self.validating or name in OWN_PARTS:
                elapsed = now() - start
                self.seconds[name] += elapsed
                if self.validating:
                    self.seconds["validation"] -= elapsed

    def wrap(self, owner: object, method: str, name: str) -> None:
        original = getattr(owner, method)

        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.part(name):
                return original(*args, **kwargs)

        setattr(owner, method, timed)


class ValidationFlag(L.Callback):
    """Counts everything between a validation's start and end as ``validation``."""

    def __init__(self, timer: PartTimer) -> None:
        self.timer = timer
        self.start = 0.0

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.timer.validating, self.start = True, now()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.timer.validating = False
        self.timer.seconds["validation"] += now() - self.start


def build_project(cfg: DictConfig, extra_callbacks: list[L.Callback]) -> tuple[Any, Any, Any]:
    """The trainer, module and data module ``imbloss.pipeline.train`` builds for ``cfg``."""
    torch.set_num_threads(cfg.threads)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = build_datamodule(cfg)
    module = build_module(cfg, datamodule)
    callbacks = [*instantiate(cfg.callbacks).values(), RunState(), *extra_callbacks]
    loggers = build_loggers(cfg.get("logger"), "bench", None, [])
    trainer = instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers, plugins=[AtomicCheckpointIO()]
    )
    return trainer, module, datamodule


def project_epochs(cfg: DictConfig) -> list[float]:
    """Seconds of each epoch after the first of the project's fit."""
    clock = EpochClock()
    trainer, module, datamodule = build_project(cfg, [clock])
    trainer.fit(module, datamodule=datamodule)
    return clock.epochs()[1:]


def instrument(trainer: Any, module: Any, datamodule: Any, timer: PartTimer) -> None:
    """Time the parts of the project's epoch (see the module docstring)."""
    timer.wrap(datamodule, "on_after_batch_transfer", "data")
    timer.wrap(module.net, "forward", "forward")
    timer.wrap(module.loss_fn, "forward", "loss")
    timer.wrap(module.finite_guard, "observe", "NaN guard")
    timer.wrap(module.finite_guard, "snapshot", "NaN guard")
    timer.wrap(module.finite_guard, "keep_finite", "NaN guard")
    timer.wrap(module, "log", "logging")
    timer.wrap(trainer.strategy, "backward", "backward")
    timer.wrap(trainer.strategy, "save_checkpoint", "checkpointing")
    for logger in trainer.loggers:
        timer.wrap(logger, "log_metrics", "logging")
        timer.wrap(logger, "save", "logging")
    original_step = module.optimizer_step

    def optimizer_step(*args: Any, **kwargs: Any) -> None:
        """Lightning's step runs the closure (forward, loss, backward) inside: the optimiser's
        share is the step's time less the parts timed within it."""
        start, before = now(), sum(timer.seconds.values())
        original_step(*args, **kwargs)
        inner = sum(timer.seconds.values()) - before
        timer.seconds["optimiser"] += now() - start - inner

    module.optimizer_step = optimizer_step


def project_parts(cfg: DictConfig) -> tuple[float, dict[str, float]]:
    """One instrumented epoch after a warm-up one: its seconds and the seconds of each part."""
    timer = PartTimer()
    clock = EpochClock()
    flag = ValidationFlag(timer)

    class Split(L.Callback):
        def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            timer.seconds.clear()

        def on_train_batch_start(self, trainer: L.Trainer, pl_module: Any, *args: Any) -> None:
            stats = pl_module.batch_stats
            if stats is not None and not hasattr(stats, "_timed"):
                timer.wrap(stats, "update", "batch stats")
                stats._timed = True

    trainer, module, datamodule = build_project(cfg, [clock, flag, Split()])
    instrument(trainer, module, datamodule, timer)
    trainer.fit(module, datamodule=datamodule)
    return clock.epochs()[-1], dict(timer.seconds)


def bare_epochs(cfg: DictConfig, epochs: int, parts: dict[str, float] | None = None) -> list[float]:
    """Seconds of each epoch after the first of a bare loop on the same data and settings;
    ``parts`` (if given) receives the seconds of each part of the last epoch."""
    torch.set_num_threads(cfg.threads)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = build_datamodule(cfg)
    module = build_module(cfg, datamodule)
    net, loss_fn = module.net, module.loss_fn
    net.to(memory_format=torch.channels_last)
    optimizer = module.configure_optimizers()
    train, val = datamodule.train_batches(cfg.seed), datamodule.eval_batches("val")
    bf16 = str(cfg.trainer.precision) == "bf16-mixed"
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else nullcontext
    seconds: list[float] = []
    for epoch in range(1 + epochs):
        split: dict[str, float] = defaultdict(float)
        clock = Clock(split)
        start = now()
        net.train()
        set_epoch = getattr(loss_fn, "set_epoch", None)
        if set_epoch is not None:
            set_epoch(epoch)
        train.sampler.set_epoch(epoch)
        batches = iter(train)
        while True:
            with clock("data"):
                batch = next(batches, None)
                if batch is not None:
                    x, y = datamodule.transform_batch(batch, training=True)
            if batch is None:
                break
            with clock("forward"), autocast():
                logits = net(x)
            with clock("loss"), autocast():
                loss = loss_fn(logits, y)
            with clock("optimiser"):
                optimizer.zero_grad(set_to_none=True)
            with clock("backward"):
                loss.backward()
            with clock("optimiser"):
                optimizer.step()
        with clock("validation"), torch.no_grad(), autocast():
            net.eval()
            probs = [
                torch.softmax(net(x).float(), 1)
                for x, _ in (datamodule.transform_batch(b, training=False) for b in val)
            ]
            torch.cat(probs)
        seconds.append(now() - start)
        if parts is not None:
            parts.clear()
            parts.update(split)
    return seconds[1:]


class Clock:
    """``with clock(name):`` adds the block's seconds to ``split[name]``."""

    def __init__(self, split: dict[str, float]) -> None:
        self.split = split

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = now()
        try:
            yield
        finally:
            self.split[name] += now() - start


def shares(total: float, parts: dict[str, float]) -> str:
    """``part share%`` for each part, and what the timers did not cover."""
    named = [f"{name} {100 * parts.get(name, 0.0) / total:.1f}%" for name in PARTS]
    rest = total - sum(parts.values())
    return ", ".join([*named, f"rest {100 * rest / total:.1f}%"])


def run_case(
    overrides: list[str], epochs: int, rounds: int, folder: Path
) -> tuple[float, float, float, dict[str, float], dict[str, float]]:
    """Median project and bare epochs (alternated), the instrumented project epoch and parts."""
    project: list[float] = []
    bare: list[float] = []
    cfg = None
    for index in range(rounds):
        run_dir = folder / f"run{index}"
        cfg = compose_cfg([*overrides, f"trainer.max_epochs={1 + epochs}"], run_dir)
        runs: list[Callable[[], None]] = [
            lambda cfg=cfg: project.extend(project_epochs(cfg)),
            lambda cfg=cfg: bare.extend(bare_epochs(cfg, epochs)),
        ]
        for run in runs if index % 2 == 0 else runs[::-1]:
            run()
    cfg = compose_cfg([*overrides, "trainer.max_epochs=2"], folder / "parts")
    total, parts = project_parts(cfg)
    bare_parts: dict[str, float] = {}
    bare_total = bare_epochs(cfg, 1, bare_parts)[0]
    print(f"  epochs: project {[round(s, 2) for s in project]}, bare {[round(s, 2) for s in bare]}")
    return (
        statistics.median(project),
        statistics.median(bare),
        total,
        parts,
        {
            "total": bare_total,
            **bare_parts,
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precisions", default="32-true,bf16-mixed")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per fit")
    parser.add_argument("--rounds", type=int, default=3, help="alternations project / bare")
    parser.add_argument("--dataset", default="fashion_mnist", help="fashion_mnist or synthetic")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu", help="what is timed")
    args = parser.parse_args()
    global _clock
    _clock = CLOCKS[args.clock]
    register_resolvers()
    print(describe_cpu())
    print(
        f"torch {torch.__version__}; fmnist_cnn, {args.dataset} step IR=100, batch 500; "
        f"median of {args.rounds} x {args.epochs} epochs, {args.clock} time; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for threads in (int(t) for t in args.threads.split(",")):
            for precision in args.precisions.split(","):
                overrides = [
                    f"dataset={args.dataset}",
                    f"threads={threads}",
                    f"trainer.precision={precision}",
                    "trainer.enable_progress_bar=false",
                ]
                folder = Path(tmp) / f"{precision}-{threads}"
                project, bare, total, parts, bare_parts = run_case(
                    overrides, args.epochs, args.rounds, folder
                )
                rows.append((precision, threads, project, bare))
                print(
                    f"{precision} {threads} thread(s): project {project:.2f} s, bare "
                    f"{bare:.2f} s, x{project / bare:.3f}"
                )
                print(f"  project parts ({total:.2f} s): {shares(total, parts)}")
                bare_total = bare_parts.pop("total")
                print(f"  bare parts ({bare_total:.2f} s): {shares(bare_total, bare_parts)}")
    print(f"{'precision':<11s} {'threads':>7s} {'project s':>9s} {'bare s':>7s} {'ratio':>6s}")
    for precision, threads, project, bare in rows:
        print(f"{precision:<11s} {threads:7d} {project:9.2f} {bare:7.2f} {project / bare:6.3f}")


if __name__ == "__main__":
    main()
