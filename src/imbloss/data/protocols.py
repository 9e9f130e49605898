"""Imbalance protocols: which samples of each official split a task keeps, and their labels.

Every protocol maps the balanced source to an `ImbalancedTask`; counts use `round_half_up`
(`floor(x + 0.5)`) unless stated, and the samples kept of a class are drawn without replacement
from a numpy Generator seeded by the dataset seed alone (`sampling.seeded_rng`), one stream per
split.

- `step` (first source, Sec. IV-A, Tables IV-VI): every even-numbered class j keeps
  `round(n_j / IR)` samples, odd classes keep all, in train and test alike
  (Fashion-MNIST IR=100: 60 of 6000 train, 10 of 1000 test).
- `binary` (first source, Sec. IV-A, Tables II-III): `minority_class` becomes label 1, every
  other class label 0, in train and test alike; its natural ratio is n_0 / n_1 (CIFAR-10: 9,
  CIFAR-100: 99).
  `ir` null keeps all; a larger `ir` keeps `round(n_0 / IR)` minority samples; a smaller one would
  need oversampling and is refused.
- `superclass_pair` (second source, Sec. III-1): two CIFAR-100 classes or superclasses, label 0 the
  majority and label 1 the minority, at minority fraction f (0.2, 0.1, 0.05 in the source). The
  source's formula ("label 0 = total · (imb_level − 1), label 1 = total · imb_level") is
  garbled: it gives a negative count. We read it as label 1 being the fraction f = imb_level of the
  final set and label 0 the fraction 1 − f, with all of label 0 kept; the final size is then
  n_0 / (1 − f), so label 1 keeps `round(n_0 · f / (1 − f))`, in train and test alike. That is
  the only reading that yields the fractions 20 / 10 / 5 % the source reports (e.g. tree_1 train:
  500 maple trees and 125 / 56 / 26 oak trees).
- `exp` (the long-tailed CIFAR-10-LT / CIFAR-100-LT profile): class i keeps
  `floor(n_max · IR^(−i/(C−1)))` training samples, n_max the smallest training class count of the
  source (the per-class count of a balanced one); the test split stays balanced and whole, as in
  those benchmarks.
- `none`: every sample, original labels.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from imbloss.data.sampling import choose, class_indices, round_half_up, seeded_rng
from imbloss.data.sources import SourceData, SplitData
from imbloss.errors import ConfigError
from imbloss.registry import Registry

SPLITS = ("train", "test")

SUPERCLASS_PAIRS: dict[str, tuple[str, str, str]] = {
    "household": ("coarse", "household_electrical_devices", "household_furniture"),
    "tree_1": ("fine", "maple_tree", "oak_tree"),
    "tree_2": ("fine", "oak_tree", "palm_tree"),
}
"""Second source, Sec. III-1: pair name -> (label level, label-0 name, label-1 (minority) name)."""


@dataclass(frozen=True)
class ProtocolSettings:
    """The keys of `conf/dataset/*.yaml` that shape the imbalance."""

    ir: float | None
    seed: int = 0
    minority_class: int | None = None
    pair: str | None = None
    minority_fraction: float | None = None


@dataclass(frozen=True)
class Selection:
    """The kept samples of one split: ascending positions into the source split, task labels."""

    indices: torch.Tensor
    targets: torch.Tensor


@dataclass(frozen=True)
class ImbalancedTask:
    """A protocol's result: both splits, the task's class names and its minority classes.

    ``full_test`` is the whole official test split of the task's classes, nothing subsampled
    (step: every test image of every class; binary: the test split; superclass_pair: both
    classes whole); where the protocol keeps the test split whole it equals ``test``.
    """

    train: Selection
    test: Selection
    full_test: Selection
    class_names: list[str]
    minority_classes: list[int]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def test_positions_in_full_test(self) -> torch.Tensor:
        """Where each protocol test sample sits in ``full_test`` (int64 [len(test)]).

        The protocol's test split is a subset of the whole one with the same task labels, so its
        predictions are those of the whole split at these positions (one forward pass for both).
        """
        full = self.full_test.indices
        positions = torch.searchsorted(full, self.test.indices).clamp_max(max(len(full) - 1, 0))
        if len(full) == 0 or not torch.equal(full[positions], self.test.indices):
            raise ValueError("the protocol's test split is not a subset of its whole test split")
        if not torch.equal(self.full_test.targets[positions], self.test.targets):
            raise ValueError("the protocol's test labels differ from the whole test split's")
        return positions


Protocol = Callable[[SourceData, ProtocolSettings], ImbalancedTask]
_PROTOCOLS: Registry[Protocol] = Registry("protocol")


def register_protocol(name: str) -> Callable[[Protocol], Protocol]:
    """Register the decorated protocol function under `name`."""

    def decorate(protocol: Protocol) -> Protocol:
        _PROTOCOLS.add(name, protocol)
        return protocol

    return decorate


def available_protocols() -> list[str]:
    """The registered protocol names."""
    return _PROTOCOLS.names()


def check_protocol(name: str) -> None:
    """ConfigError naming the accepted protocols unless `name` is registered."""
    _PROTOCOLS.get(name)


def apply_protocol(name: str, source: SourceData, settings: ProtocolSettings) -> ImbalancedTask:
    """Apply protocol `name` to both splits of `source`."""
    return _PROTOCOLS.get(name)(source, settings)


# --------------------------------------------------------------------------- shared steps


def _counts(labels: torch.Tensor, num_classes: int) -> list[int]:
    """Samples per class j < num_classes (negative labels, i.e. dropped samples, not counted)."""
    return torch.bincount(labels[labels >= 0], minlength=num_classes).tolist()


def _select(labels: torch.Tensor, quotas: Sequence[int], rng: np.random.Generator) -> Selection:
    """Keep `quotas[j]` samples of each class j of `labels` (task labels; negative = drop)."""
    per_class = class_indices(labels, len(quotas))
    chosen = [choose(indices, quota, rng) for indices, quota in zip(per_class, quotas, strict=True)]
    kept = np.sort(np.concatenate(chosen))
    indices = torch.from_numpy(kept).long()
    return Selection(indices=indices, targets=labels[indices])


def _select_splits(
    labels: dict[str, torch.Tensor], quotas: dict[str, list[int]], seed: int
) -> dict[str, Selection]:
    """`_select` on each split named in `quotas`, each split with its own random stream."""
    return {
        split: _select(labels[split], quotas[split], seeded_rng(seed, split)) for split in quotas
    }


def _require_ir(protocol: str, ir: float | None) -> float:
    if ir is None:
        raise ConfigError(f"protocol {protocol!r} needs ir, got ir=null; accepted: a number >= 1")
    return float(ir)


def _require_no_ir(protocol: str, ir: float | None, reason: str) -> None:
    if ir is not None and float(ir) != 1.0:
        raise ConfigError(
            f"protocol {protocol!r} takes no ir, got ir={ir:g} ({reason}); accepted: null"
        )


def _check_nonempty(
    quotas: dict[str, list[int]],
    class_names: Sequence[str],
    ir: float,
    max_ir: float,
    protocol: str,
) -> None:
    """ConfigError if a class would keep no sample in some split, naming the largest accepted ir."""
    for split, split_quotas in quotas.items():
        for j, quota in enumerate(split_quotas):
            if quota < 1:
                raise ConfigError(
                    f"ir={ir:g} leaves class {j} ({class_names[j]}) with no {split} sample under "
                    f"protocol {protocol!r}; accepted: 1 <= ir <= {max_ir:g}"
                )


def _whole(labels: torch.Tensor) -> Selection:
    """Every sample of a split that carries a task label (negative labels are not the task's)."""
    indices = torch.nonzero(labels >= 0).flatten()
    return Selection(indices=indices, targets=labels[indices])


def _source_labels(source: SourceData) -> dict[str, torch.Tensor]:
    return {"train": source.train.labels, "test": source.test.labels}


def _split_data(source: SourceData, split: str) -> SplitData:
    return source.train if split == "train" else source.test


# --------------------------------------------------------------------------- protocols


@register_protocol("none")
def no_imbalance(source: SourceData, settings: ProtocolSettings) -> ImbalancedTask:
    """Every sample with its original label; ir must be null (or 1)."""
    _require_no_ir("none", settings.ir, "it keeps every sample")
    selections = {split: _whole(labels) for split, labels in _source_labels(source).items()}
    return ImbalancedTask(
        **selections,
        full_test=selections["test"],
        class_names=list(source.class_names),
        minority_classes=[],
    )


@register_protocol("step")
def step(source: SourceData, settings: ProtocolSettings) -> ImbalancedTask:
    """Even classes keep `round(n_j / IR)` samples, odd classes all, in train and test."""
    ir = _require_ir("step", settings.ir)
    num_classes = len(source.class_names)
    labels = _source_labels(source)
    counts = {split: _counts(split_labels, num_classes) for split, split_labels in labels.items()}
    quotas = {
        split: [round_half_up(n / ir) if j % 2 == 0 else n for j, n in enumerate(split_counts)]
        for split, split_counts in counts.items()
    }
    max_ir = 2 * min(n for split_counts in counts.values() for n in split_counts[::2])
    _check_nonempty(quotas, source.class_names, ir, max_ir, "step")
    return ImbalancedTask(
        **_select_splits(labels, quotas, settings.seed),
        full_test=_whole(labels["test"]),
        class_names=list(source.class_names),
        minority_classes=list(range(0, num_classes, 2)),
    )


@register_protocol("binary")
def binary(source: SourceData, settings: ProtocolSettings) -> ImbalancedTask:
    """`minority_class` -> label 1, all others -> label 0; optional further minority subsampling."""
    num_classes = len(source.class_names)
    minority = settings.minority_class
    if minority is None or not 0 <= minority < num_classes:
        raise ConfigError(
            f"protocol 'binary' needs dataset.minority_class in 0..{num_classes - 1}, "
            f"got {minority}"
        )
    labels = {split: (y == minority).long() for split, y in _source_labels(source).items()}
    counts = {split: _counts(y, 2) for split, y in labels.items()}
    quotas = {split: list(split_counts) for split, split_counts in counts.items()}
    name = source.class_names[minority]
    class_names = [f"not_{name}", name]
    if settings.ir is not None:
        ir = float(settings.ir)
        for split, (n_majority, n_minority) in counts.items():
            natural = n_majority / n_minority
            if ir < natural * (1 - 1e-9):
                raise ConfigError(
                    f"ir={ir:g} is below the natural ratio {natural:g} of binary minority class "
                    f"{minority} ({name}: {n_minority} vs {n_majority} in {split}); the minority "
                    f"cannot be oversampled; accepted: ir=null or ir >= {natural:g}"
                )
            quotas[split][1] = min(round_half_up(n_majority / ir), n_minority)
        max_ir = 2 * min(n_majority for n_majority, _ in counts.values())
        _check_nonempty(quotas, class_names, ir, max_ir, "binary")
    return ImbalancedTask(
        **_select_splits(labels, quotas, settings.seed),
        full_test=_whole(labels["test"]),
        class_names=class_names,
        minority_classes=[1],
    )


def _pair_labels(source: SourceData, pair: str) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Task labels of a pair (0, 1, or -1 for samples of neither class) and the pair's names."""
    level, majority_name, minority_name = SUPERCLASS_PAIRS[pair]
    names = source.coarse_names if level == "coarse" else source.class_names
    if names is None:
        raise ConfigError(
            f"superclass_pair {pair!r} needs CIFAR-100 superclass labels; "
            "accepted dataset: cifar100"
        )
    missing = [name for name in (majority_name, minority_name) if name not in names]
    if missing:
        raise ConfigError(
            f"superclass_pair {pair!r} needs {level} class {', '.join(missing)}, which the dataset "
            f"lacks; accepted dataset: cifar100"
        )
    majority, minority = names.index(majority_name), names.index(minority_name)
    labels = {}
    for split in SPLITS:
        data = _split_data(source, split)
        original = data.coarse_labels if level == "coarse" else data.labels
        task = torch.full_like(original, -1)
        task[original == majority] = 0
        task[original == minority] = 1
        labels[split] = task
    return labels, [majority_name, minority_name]


@register_protocol("superclass_pair")
def superclass_pair(source: SourceData, settings: ProtocolSettings) -> ImbalancedTask:
    """Label 0 kept whole, label 1 cut to `round(n_0 · f / (1 − f))`: the fraction f of the set."""
    _require_no_ir("superclass_pair", settings.ir, "dataset.minority_fraction sets the imbalance")
    if settings.pair not in SUPERCLASS_PAIRS:
        raise ConfigError(
            f"unknown superclass pair {settings.pair!r}; accepted: {', '.join(SUPERCLASS_PAIRS)}"
        )
    fraction = settings.minority_fraction
    if fraction is None or not 0 < fraction < 0.5:
        raise ConfigError(
            f"superclass_pair needs dataset.minority_fraction in (0, 0.5), got {fraction} "
            "(the source uses 0.2, 0.1, 0.05)"
        )
    labels, class_names = _pair_labels(source, settings.pair)
    quotas = {}
    for split, split_labels in labels.items():
        n_majority, n_minority = _counts(split_labels, 2)
        wanted = round_half_up(n_majority * fraction / (1 - fraction))
        if not 1 <= wanted <= n_minority:
            raise ConfigError(
                f"minority_fraction={fraction:g} needs {wanted} {class_names[1]} samples in "
                f"{split} but {n_minority} exist (with {n_majority} {class_names[0]}); accepted: "
                f"a fraction giving 1..{n_minority} samples"
            )
        quotas[split] = [n_majority, wanted]
    return ImbalancedTask(
        **_select_splits(labels, quotas, settings.seed),
        full_test=_whole(labels["test"]),
        class_names=class_names,
        minority_classes=[1],
    )


def exp_profile(n_max: int, num_classes: int, ir: float) -> list[int]:
    """`floor(n_max · IR^(−i/(C−1)))` for i = 0..C−1 (1e-9 absorbs floating error at exact ints)."""
    return [math.floor(n_max * ir ** (-i / (num_classes - 1)) + 1e-9) for i in range(num_classes)]


@register_protocol("exp")
def exponential(source: SourceData, settings: ProtocolSettings) -> ImbalancedTask:
    """Long-tailed training split; the test split stays balanced and whole."""
    ir = _require_ir("exp", settings.ir)
    num_classes = len(source.class_names)
    labels = _source_labels(source)
    n_max = min(_counts(labels["train"], num_classes))
    quotas = {"train": exp_profile(n_max, num_classes, ir)}
    _check_nonempty(quotas, source.class_names, ir, n_max, "exp")
    train = _select(labels["train"], quotas["train"], seeded_rng(settings.seed, "train"))
    test = _whole(labels["test"])
    fewest_first = sorted(range(num_classes), key=lambda j: (quotas["train"][j], -j))
    return ImbalancedTask(
        train=train,
        test=test,
        full_test=test,
        class_names=list(source.class_names),
        minority_classes=sorted(fewest_first[: num_classes // 2]),
    )
