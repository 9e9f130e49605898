"""`ImbalancedDataModule`: a dataset source + an imbalance protocol + a stratified validation split.

The decoded images stay uint8 tensors in memory (on the training GPU when there is one); batches
are cut by index, then normalised — and, for training with `augment`, randomly cropped and flipped —
as whole tensors in `on_after_batch_transfer`, i.e. on the training device.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning
import torch

from imbloss.checks import check_count, check_seed
from imbloss.data.batches import EpochSampler, TensorBatches
from imbloss.data.noise import check_label_noise, flip_majority_labels
from imbloss.data.protocols import ProtocolSettings, apply_protocol, check_protocol
from imbloss.data.samplers import build_sampler, check_sampler
from imbloss.data.sampling import seeded_rng
from imbloss.data.sources import check_source_options, fetch_source, load_source, source_shape
from imbloss.data.splits import check_val_fraction, stratified_split
from imbloss.data.transforms import channel_stats, normalize, random_crop_flip
from imbloss.errors import ConfigError

log = logging.getLogger(__name__)
EVAL_SPLITS = ("val", "test", "full_test")


class ImbalancedDataModule(lightning.LightningDataModule):
    """Imbalanced train / validation / test splits of one dataset, served as tensor batches.

    `seed` is the subsampling seed (protocol and validation split), independent of the training
    seed; the training batches of every epoch are drawn by the configured sampler
    (`imbloss.data.samplers`: `sampler={"name": ..., **options}`, default `none`) from the training
    seed and the epoch (`train_batches(seed)`; `train_dataloader()` uses `torch.initial_seed()`,
    which `lightning.seed_everything` sets). `label_noise` flips that fraction of every majority
    class's training labels (`imbloss.data.noise`; validation and test untouched). Evaluation
    splits (`EVAL_SPLITS`): `val`, `test` (the protocol's test split) and `full_test` (the whole
    official test split of the task's classes), served in order by `eval_batches(split)`.
    `input_shape` (C, H, W) is known once constructed (the source's, from its options). After
    `prepare_data()` and `setup()`: `num_classes`, `class_names`, `minority_classes`,
    `{train,val,test,full_test}_class_counts` (train: the labels trained on,
    after the noise), `protocol_train_class_counts` (the protocol's training split before the
    validation hold-out and the noise: the counts the long-tail literature's many/medium/few-shot
    thresholds refer to), `label_noise_flipped` (per class), `steps_per_epoch` and
    `test_in_full_test` (the positions of the protocol's test samples in `full_test`).
    """

    def __init__(
        self,
        name: str,
        data_dir: str,
        protocol: str = "step",
        ir: float | None = 100.0,
        seed: int = 0,
        batch_size: int = 500,
        eval_batch_size: int = 2000,
        val_fraction: float = 0.1,
        verify: bool = True,
        download: bool = True,
        minority_class: int | None = None,
        pair: str | None = None,
        minority_fraction: float | None = None,
        augment: bool = False,
        sampler: Mapping[str, Any] | None = None,
        label_noise: float = 0.0,
        **source_options: Any,
    ) -> None:
        super().__init__()
        check_source_options(name, source_options)
        check_protocol(protocol)
        is_number = isinstance(ir, int | float) and not isinstance(ir, bool)
        if ir is not None and not (is_number and math.isfinite(ir) and ir >= 1):
            raise ConfigError(f"ir={ir} is out of range; accepted: a finite number >= 1 (or null)")
        self.batch_size = check_count("dataset.batch_size", batch_size)
        self.eval_batch_size = check_count("dataset.eval_batch_size", eval_batch_size)
        self.seed = check_seed("dataset.seed", seed)
        check_val_fraction(val_fraction)
        sampler_options = dict(sampler or {"name": "none"})
        self.sampler_name = str(sampler_options.pop("name", "none"))
        check_sampler(self.sampler_name, sampler_options)
        self.sampler_options = sampler_options
        self.label_noise = check_label_noise(label_noise)
        self.name = name
        self.data_dir = Path(data_dir)
        self.protocol = protocol
        self.ir = None if ir is None else float(ir)
        self.val_fraction = float(val_fraction)
        self.augment = augment
        self.settings = ProtocolSettings(
            ir=self.ir,
            seed=self.seed,
            minority_class=minority_class,
            pair=pair,
            minority_fraction=minority_fraction,
        )
        self.source_options = {"verify": verify, "download": download, **source_options}
        self.input_shape = source_shape(name, **self.source_options)
        self._splits: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None

    # ------------------------------------------------------------------ data preparation

    def prepare_data(self) -> None:
        """Put the dataset's files below `data_dir` (decompress or download); loads nothing."""
        fetch_source(self.name, self.data_dir, **self.source_options)

    def setup(self, stage: str | None = None) -> None:
        """Load, apply the protocol, carve the validation split. Runs once; later calls return."""
        if self._splits is not None:
            return
        source = load_source(self.name, self.data_dir, **self.source_options)
        task = apply_protocol(self.protocol, source, self.settings)
        train_part, val_part = stratified_split(
            task.train.targets, task.num_classes, self.val_fraction, seeded_rng(self.seed, "val")
        )
        train_positions = task.train.indices
        train_targets, self.label_noise_flipped = flip_majority_labels(
            task.train.targets[train_part],
            task.num_classes,
            task.minority_classes,
            self.label_noise,
            seeded_rng(self.seed, "label_noise"),
        )
        self._splits = {
            "train": (source.train.images[train_positions[train_part]], train_targets),
            "val": (source.train.images[train_positions[val_part]], task.train.targets[val_part]),
            "test": (source.test.images[task.test.indices], task.test.targets),
            "full_test": (source.test.images[task.full_test.indices], task.full_test.targets),
        }
        # the protocol test split's place in the whole one: one forward pass serves both
        self.test_in_full_test = task.test_positions_in_full_test()
        self.mean, self.std = channel_stats(source.train.images)
        self.class_names = task.class_names
        self.num_classes = task.num_classes
        self.minority_classes = task.minority_classes
        if source.input_shape != self.input_shape:
            raise RuntimeError(
                f"{self.name} images are {source.input_shape}, not {self.input_shape} as its "
                "source's shape says"
            )
        counts = {
            split: torch.bincount(targets, minlength=self.num_classes).tolist()
            for split, (_, targets) in self._splits.items()
        }
        self.train_class_counts: list[int] = counts["train"]
        self.val_class_counts: list[int] = counts["val"]
        self.test_class_counts: list[int] = counts["test"]
        self.full_test_class_counts: list[int] = counts["full_test"]
        self.protocol_train_class_counts: list[int] = torch.bincount(
            task.train.targets, minlength=self.num_classes
        ).tolist()
        # the sampler's values were checked at construction (check_sampler)
        self.steps_per_epoch = math.ceil(self.train_sampler(0).num_samples / self.batch_size)
        log.info(
            "%s / %s (ir=%s, seed=%d): train %s, val %s, test %s, whole test split %s",
            self.name,
            self.protocol,
            self.ir,
            self.seed,
            self.train_class_counts,
            self.val_class_counts,
            self.test_class_counts,
            self.full_test_class_counts,
        )

    def summary(self) -> dict[str, Any]:
        """What the run used, for metrics.json: names, protocol, seed, exact class counts, the
        sampler and its epoch length (``steps_per_epoch = ceil(num_samples / batch_size)``), and
        the label noise (``label_noise_flipped`` only when ``label_noise > 0``)."""
        noise = {"label_noise": self.label_noise}
        if self.label_noise > 0:
            noise["label_noise_flipped"] = self.label_noise_flipped
        return {
            "dataset": self.name,
            "protocol": self.protocol,
            "ir": self.ir,
            "data_seed": self.seed,
            "num_classes": self.num_classes,
            "input_shape": list(self.input_shape),
            "class_names": self.class_names,
            "minority_classes": self.minority_classes,
            "train_class_counts": self.train_class_counts,
            "val_class_counts": self.val_class_counts,
            "protocol_train_class_counts": self.protocol_train_class_counts,
            "test_class_counts": self.test_class_counts,
            "sampler": self.sampler_name,
            "sampler_options": self.sampler_options,
            "steps_per_epoch": self.steps_per_epoch,
            "batch_size": self.batch_size,
            **noise,
        }

    # ------------------------------------------------------------------ batches

    def _device(self) -> torch.device:
        """The trainer's device when it is a GPU (the uint8 tensors then live there), else CPU."""
        trainer = self.trainer
        if trainer is not None and trainer.strategy.root_device.type == "cuda":
            return trainer.strategy.root_device
        return torch.device("cpu")

    def _split_tensors(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        if self._splits is None:
            raise RuntimeError("call setup() before asking for batches")
        device = self._device()
        images, targets = self._splits[split]
        if images.device != device:
            images, targets = images.to(device), targets.to(device)
            self._splits[split] = (images, targets)
        return images, targets

    def train_sampler(self, seed: int) -> EpochSampler:
        """The configured sampler over the training split for training seed ``seed``."""
        if self._splits is None:
            raise RuntimeError("call setup() before asking for batches")
        targets = self._splits["train"][1]
        return build_sampler(
            self.sampler_name, targets, self.num_classes, seed, **self.sampler_options
        )

    def _shard(self) -> dict[str, int]:
        """This process's share of every batch under data-parallel training (see TensorBatches)."""
        trainer = self.trainer
        if trainer is None:
            return {"rank": 0, "world_size": 1}
        return {"rank": trainer.global_rank, "world_size": trainer.world_size}

    def train_batches(self, seed: int) -> TensorBatches:
        """The training batches of a run with training seed ``seed`` (its sampler's order)."""
        sampler = self.train_sampler(seed)
        images, targets = self._split_tensors("train")
        return TensorBatches(images, targets, self.batch_size, sampler, **self._shard())

    def train_dataloader(self) -> TensorBatches:
        return self.train_batches(torch.initial_seed())

    def eval_batches(self, split: str) -> TensorBatches:
        """The uint8 batches of an evaluation split (one of `EVAL_SPLITS`), in order."""
        if split not in EVAL_SPLITS:
            raise ValueError(f"unknown evaluation split {split!r}; accepted: {EVAL_SPLITS}")
        return TensorBatches(*self._split_tensors(split), self.eval_batch_size)

    def val_dataloader(self) -> TensorBatches:
        return self._lightning_eval_batches("val")

    def test_dataloader(self) -> TensorBatches:
        return self._lightning_eval_batches("test")

    def _lightning_eval_batches(self, split: str) -> TensorBatches:
        """Lightning's evaluation batches: this process's part under DDP (the module gathers the
        outputs); ``eval_batches`` is the whole split, for the post-fit stage."""
        return TensorBatches(*self._split_tensors(split), self.eval_batch_size, **self._shard())

    def transform_batch(
        self, batch: tuple[torch.Tensor, torch.Tensor], training: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 batch -> (normalised float32 images, int64 targets); augments training batches."""
        images, targets = batch
        if training and self.augment:
            images = random_crop_flip(images)
        return normalize(images, self.mean, self.std), targets

    def on_after_batch_transfer(
        self, batch: tuple[torch.Tensor, torch.Tensor], dataloader_idx: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        training = self.trainer is not None and self.trainer.training
        return self.transform_batch(batch, training)
