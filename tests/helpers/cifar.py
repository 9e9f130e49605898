"""Small CIFAR-10 / CIFAR-100 files in the real on-disk (python pickle) format, for offline tests.

The files have the official names and layout (`cifar-10-batches-py/data_batch_1..5, test_batch,
batches.meta`; `cifar-100-python/train, test, meta`), keys and dtypes, the official class and
superclass names and CIFAR-100's fine-to-coarse mapping, but few random images per class — so their
md5 differs from the official files and loading them needs `verify=False`.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

CIFAR10_CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
]  # fmt: skip

CIFAR100_FINE = [
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle",
    "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar",
    "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile",
    "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster",
    "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster",
    "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom", "oak_tree", "orange",
    "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree", "plain", "plate", "poppy",
    "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket", "rose", "sea", "seal",
    "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider", "squirrel", "streetcar",
    "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger", "tractor",
    "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman",
    "worm",
]  # fmt: skip

CIFAR100_COARSE = [
    "aquatic_mammals", "fish", "flowers", "food_containers", "fruit_and_vegetables",
    "household_electrical_devices", "household_furniture", "insects", "large_carnivores",
    "large_man-made_outdoor_things", "large_natural_outdoor_scenes",
    "large_omnivores_and_herbivores", "medium_mammals", "non-insect_invertebrates", "people",
    "reptiles", "small_mammals", "trees", "vehicles_1", "vehicles_2",
]  # fmt: skip

CIFAR100_COARSE_OF_FINE = [
    4, 1, 14, 8, 0, 6, 7, 7, 18, 3, 3, 14, 9, 18, 7, 11, 3, 9, 7, 11,
    6, 11, 5, 10, 7, 6, 13, 15, 3, 15, 0, 11, 1, 10, 12, 14, 16, 9, 11, 5,
    5, 19, 8, 8, 15, 13, 14, 17, 18, 10, 16, 4, 17, 4, 2, 0, 17, 4, 18, 17,
    10, 3, 2, 12, 12, 16, 12, 1, 9, 19, 2, 10, 0, 1, 16, 12, 9, 13, 15, 13,
    16, 19, 2, 4, 6, 19, 5, 5, 8, 19, 18, 1, 2, 15, 6, 0, 17, 8, 14, 13,
]  # fmt: skip
"""CIFAR-100's superclass of each fine class (index = fine label)."""


def _dump(path: Path, content: dict) -> None:
    with path.open("wb") as handle:
        pickle.dump(content, handle)


def _labelled_images(
    num_classes: int, per_class: int, rng: np.random.Generator
) -> tuple[np.ndarray, list[int]]:
    """Random uint8 rows [N, 3072] (CIFAR's flattened CHW) and interleaved labels 0..C-1, 0..C-1."""
    labels = [j for _ in range(per_class) for j in range(num_classes)]
    data = rng.integers(0, 256, size=(len(labels), 3 * 32 * 32), dtype=np.uint8)
    return data, labels


def write_fake_cifar10(root: Path | str, per_class_train: int, per_class_test: int) -> Path:
    """Write `<root>/cifar-10-batches-py/`: per_class_train images of each class spread round-robin
    over data_batch_1..5, per_class_test each in test_batch; returns the folder."""
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(10)
    data, labels = _labelled_images(10, per_class_train, rng)
    for batch in range(5):
        _dump(
            folder / f"data_batch_{batch + 1}",
            {
                "batch_label": f"training batch {batch + 1} of 5",
                "labels": labels[batch::5],
                "data": data[batch::5],
                "filenames": [f"train_{i}.png" for i in range(batch, len(labels), 5)],
            },
        )
    data, labels = _labelled_images(10, per_class_test, rng)
    _dump(
        folder / "test_batch",
        {"batch_label": "testing batch 1 of 1", "labels": labels, "data": data},
    )
    _dump(
        folder / "batches.meta",
        {"label_names": CIFAR10_CLASSES, "num_cases_per_batch": len(labels), "num_vis": 3072},
    )
    return folder


def write_fake_cifar100(root: Path | str, per_class_train: int, per_class_test: int) -> Path:
    """Write `<root>/cifar-100-python/` (train, test with fine and coarse labels, meta); returns the
    folder."""
    folder = Path(root) / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(100)
    for split, per_class in (("train", per_class_train), ("test", per_class_test)):
        data, fine = _labelled_images(100, per_class, rng)
        _dump(
            folder / split,
            {
                "batch_label": f"{split}ing batch 1 of 1",
                "fine_labels": fine,
                "coarse_labels": [CIFAR100_COARSE_OF_FINE[label] for label in fine],
                "data": data,
                "filenames": [f"{split}_{i}.png" for i in range(len(fine))],
            },
        )
    _dump(
        folder / "meta", {"fine_label_names": CIFAR100_FINE, "coarse_label_names": CIFAR100_COARSE}
    )
    return folder
