"""What a stacked group costs against separate runs (Fashion-MNIST, step IR=100, fmnist_cnn).

1. Epochs: one ordinary run (a Lightning fit of one epoch), then stacked passes of K members
   (the first K points of the 133-point focal_alpha grid, seeds 0..K-1) through the stacked engine,
   with each forward mode (``loop``: each member's own kernels; ``vmap``: grouped convolutions and
   batched matrix products), in the passes the launcher would cut a group of K into to fit the
   device's memory (printed when there is more than one). Every measured epoch is ``--steps``
   training batches of 500 (``all``: the whole epoch) plus the full validation pass, as in a
   run. Printed: seconds, seconds per member, and the ratio to K separate epochs (``< 1``: the
   stack is cheaper per member).
2. Sweep: the whole ``sweep=wce`` multirun (19 jobs) of ``--sweep-epochs`` epochs under the basic
   and the stacked launcher, wall time of each command (``--sweep-steps`` caps the batches per
   epoch through ``trainer.limit_train_batches``; ``--sweep-steps all`` runs whole epochs), split
   by the jobs' ``metrics.json`` into fit time, post-fit evaluation time and the rest.
3. On a CUDA device, also ``resnet18`` on CIFAR-10 shapes (3x32x32, generated images, batch 128).

Like ``train.py`` it runs with glibc malloc tuned (``imbloss.runtime``). Run, e.g.:

    .venv/bin/python benchmarks/bench_stacked.py --members 1,8,32,133 --steps all
    .venv/bin/python benchmarks/bench_stacked.py --members 8 --steps 10 --skip-sweep
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import torch

from hydra_plugins.imbloss_stacked.stacked_launcher import StackedLauncherConf
from imbloss.data import ImbalancedDataModule
from imbloss.losses import build_loss, loss_spec
from imbloss.models import CifarResNet18, FashionMNISTCNN
from imbloss.module import ImbalancedClassifier
from imbloss.runtime import ensure_malloc_tuning
from imbloss.stacked.engine import fit_stack
from imbloss.stacked.memory import PassPlan, plan_passes

REPOSITORY = Path(__file__).resolve().parents[1]
MEMORY_FRACTION = StackedLauncherConf.memory_fraction  # the launcher's default


def focal_alpha_members(
    datamodule: ImbalancedDataModule, count: int, make_net
) -> list[ImbalancedClassifier]:
    """The first ``count`` points of the focal_alpha grid, member k seeded with k."""
    grid = loss_spec("focal_alpha").grid
    points = list(itertools.product(grid["scale"], grid["gamma"]))[:count]
    members = []
    for seed, (scale, gamma) in enumerate(points):
        torch.manual_seed(seed)
        loss = build_loss(
            "focal_alpha", class_counts=datamodule.train_class_counts, scale=scale, gamma=gamma
        )
        members.append(
            ImbalancedClassifier(
                make_net(),
                loss,
                lambda p: torch.optim.Adam(p, lr=1e-3),
                datamodule.minority_classes,
            )
        )
    return members


def single_epoch(datamodule, make_net, steps: int | float, device: torch.device) -> float:
    """Seconds of one Lightning fit of one epoch (``steps`` batches) of one ordinary run."""
    (module,) = focal_alpha_members(datamodule, 1, make_net)
    trainer = L.Trainer(
        max_epochs=1,
        limit_train_batches=steps,
        accelerator=device.type,
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    start = time.perf_counter()
    trainer.fit(module, datamodule=datamodule)
    return time.perf_counter() - start


def stacked_epoch(
    datamodule, make_net, count: int, steps: int | float, device: torch.device, vectorize: bool
) -> tuple[float, PassPlan]:
    """Seconds of one stacked epoch (``steps`` batches) of ``count`` members, trained in the
    passes the launcher would make (its default ``memory_fraction``), one after another."""
    batch_shape = (datamodule.batch_size, *datamodule.input_shape)
    plan = plan_passes(count, make_net(), batch_shape, device, MEMORY_FRACTION)
    members = focal_alpha_members(datamodule, count, make_net)
    start = time.perf_counter()
    for part in plan.passes:
        fit_stack(
            members[part.start : part.stop],
            list(part),
            datamodule,
            max_epochs=1,
            device=device,
            limit_train_batches=steps,
            vectorize=vectorize,
        )
    return time.perf_counter() - start, plan


def compare_epochs(title, datamodule, make_net, counts, steps, forwards, device) -> None:
    """Part 1 (and 3): the single epoch, then each stack size and forward mode."""
    batches = len(datamodule.train_dataloader())
    measured = batches if steps == 1.0 else min(int(steps), batches)
    print(
        f"\n{title}: {sum(datamodule.train_class_counts)} training images, {measured} of "
        f"{batches} batches of {datamodule.batch_size} per measured epoch + validation"
    )
    single_epoch(datamodule, make_net, 1, device)  # warm-up: first kernels, allocations
    single = single_epoch(datamodule, make_net, steps, device)
    print(f"  one run (Lightning fit):  {single:8.2f} s per epoch")
    for count, forward in itertools.product(counts, forwards):
        seconds, plan = stacked_epoch(datamodule, make_net, count, steps, device, forward == "vmap")
        print(
            f"  stack K={count:<4d} {forward:<5s}  {seconds:8.2f} s per epoch, "
            f"{seconds / count:7.2f} s per member, ratio to {count} separate epochs "
            f"{seconds / (count * single):.2f}"
            + (f" ({plan.describe()})" if len(plan.passes) > 1 else "")
        )


def compare_sweep(epochs: int, steps: str, data_dir: str) -> None:
    """Part 2: the 19-job wce sweep under both launchers, one command each."""
    limit = [] if steps == "all" else [f"+trainer.limit_train_batches={int(steps)}"]
    args = [
        "-m",
        "experiment=fmnist_step",
        "sweep=wce",
        "ir=100",
        f"trainer.max_epochs={epochs}",
        "trainer.enable_progress_bar=false",
        *limit,
    ]
    print(f"\nsweep=wce (19 jobs), {epochs} epochs, batches per epoch: {steps}")
    with tempfile.TemporaryDirectory() as logs:
        env = {**os.environ, "IMBLOSS_LOG_DIR": logs, "IMBLOSS_DATA_DIR": data_dir}
        for launcher in ("basic", "stacked"):
            command = [sys.executable, str(REPOSITORY / "train.py"), *args]
            command += [f"hydra.sweep.dir={logs}/{launcher}", f"hydra/launcher={launcher}"]
            start = time.perf_counter()
            result = subprocess.run(command, env=env, capture_output=True, text=True)
            seconds = time.perf_counter() - start
            if result.returncode != 0:
                raise SystemExit(f"{launcher} sweep failed:\n{result.stderr[-3000:]}")
            runs = [json.loads(p.read_text()) for p in Path(logs, launcher).glob("*/metrics.json")]
            fit = sum(run["fit_time_s"] for run in runs)
            evaluation = sum(run["evaluation_time_s"] for run in runs)
            print(
                f"  {launcher:<8s} launcher: {seconds:8.1f} s wall for {len(runs)} finished jobs: "
                f"fit {fit:.1f} s, post-fit evaluation {evaluation:.1f} s, the rest (start-up, "
                f"configs, data, set-up, files) {seconds - fit - evaluation:.1f} s"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_dir = os.environ.get("IMBLOSS_DATA_DIR", str(REPOSITORY / "data"))
    parser.add_argument("--data-dir", default=default_dir)
    parser.add_argument("--members", default="1,8,32,133", help="stack sizes K, comma-separated")
    parser.add_argument("--steps", default="all", help="training batches per epoch, or 'all'")
    parser.add_argument("--forward", default="loop,vmap", help="forward modes: loop, vmap")
    parser.add_argument("--sweep-epochs", type=int, default=2)
    parser.add_argument("--sweep-steps", default="all")
    parser.add_argument("--skip-sweep", action="store_true")
    parser.add_argument("--skip-epochs", action="store_true", help="only the sweep (part 2)")
    arguments = parser.parse_args()
    counts = [int(k) for k in arguments.members.split(",")]
    forwards = arguments.forward.split(",")
    steps: int | float = 1.0 if arguments.steps == "all" else int(arguments.steps)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {name}")

    datamodule = ImbalancedDataModule("fashion_mnist", arguments.data_dir, ir=100, batch_size=500)
    datamodule.prepare_data()
    datamodule.setup("fit")
    if not arguments.skip_epochs:
        compare_epochs(
            "Fashion-MNIST step IR=100, fmnist_cnn",
            datamodule,
            lambda: FashionMNISTCNN(datamodule.input_shape, datamodule.num_classes),
            counts,
            steps,
            forwards,
            device,
        )
    if not arguments.skip_sweep:
        compare_sweep(arguments.sweep_epochs, arguments.sweep_steps, arguments.data_dir)
    if device.type == "cuda":
        cifar = ImbalancedDataModule(
            "synthetic",
            arguments.data_dir,
            ir=100,
            batch_size=128,
            channels=3,
            image_size=32,
            train_per_class=5000,
            test_per_class=1000,
        )
        cifar.prepare_data()
        cifar.setup("fit")
        compare_epochs(
            "CIFAR-10 shapes (generated), step IR=100, resnet18",
            cifar,
            lambda: CifarResNet18(cifar.input_shape, cifar.num_classes),
            counts,
            steps,
            forwards,
            device,
        )


if __name__ == "__main__":
    ensure_malloc_tuning()
    main()
