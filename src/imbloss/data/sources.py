"""Dataset sources: one loader per dataset, registered by name.

A loader returns the decoded images of both official splits as uint8 tensors [N, C, H, W] with their
int64 labels and the class names (Sec. IV-A of the first source: Fashion-MNIST 60000/10000 28×28×1,
CIFAR-10 and CIFAR-100 50000/10000 32×32×3). CIFAR-100 also carries its 20 superclass ("coarse")
labels, which the `superclass_pair` protocol of the second source (Sec. III-1) needs.

Each source has a `fetch` step (put the files on disk; run by `prepare_data`), a `load` step
(read them; run by `setup`) and a `shape` (the (C, H, W) of one image, from its options alone:
the checks a job passes first build the network before any file is read). Files live in
torchvision's layout below `data_dir`; loading goes through torchvision's own dataset classes.
"""

from __future__ import annotations

import gzip
import inspect
import pickle
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torchvision.datasets import CIFAR10, CIFAR100, FashionMNIST
from torchvision.datasets.utils import download_and_extract_archive

from imbloss.checks import check_count
from imbloss.errors import ConfigError
from imbloss.registry import Registry
from imbloss.runs.outputs import atomic_file

DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
"""Where the Debian package `dataset-fashion-mnist` installs the original gzip files."""

FASHION_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


@dataclass(frozen=True)
class SplitData:
    """One official split: uint8 images [N, C, H, W], int64 labels [N], superclass labels/None."""

    images: torch.Tensor
    labels: torch.Tensor
    coarse_labels: torch.Tensor | None = None


@dataclass(frozen=True)
class SourceData:
    """Both official splits of a dataset with its class names (and superclass names, CIFAR-100)."""

    train: SplitData
    test: SplitData
    class_names: list[str]
    coarse_names: list[str] | None = None

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.train.images.shape[1:])  # type: ignore[return-value]


COMMON_OPTIONS = ("verify", "download")
"""Options every dataset accepts; a loader that has no use for one ignores it."""

Loader = Callable[..., SourceData]
Fetcher = Callable[..., None]
Shaper = Callable[..., tuple[int, int, int]]
FASHION_MNIST_SHAPE = (1, 28, 28)
CIFAR_SHAPE = (3, 32, 32)


@dataclass(frozen=True)
class Source:
    """A registered dataset: `fetch(data_dir, ...)` puts its files on disk, `load` reads them,
    `shape(...)` gives the (C, H, W) of the images `load` returns, reading no file."""

    fetch: Fetcher
    load: Loader
    shape: Shaper


_SOURCES: Registry[Source] = Registry("dataset")


def _fetch_nothing(data_dir: Path, **options: object) -> None:
    """Fetch step of sources that need no files."""


def register_source(
    name: str, shape: Shaper, fetch: Fetcher = _fetch_nothing
) -> Callable[[Loader], Loader]:
    """Register `load` (the decorated function), `shape` and `fetch` under `name`."""

    def decorate(load: Loader) -> Loader:
        _SOURCES.add(name, Source(fetch=fetch, load=load, shape=shape))
        return load

    return decorate


def available_sources() -> list[str]:
    """The registered dataset names."""
    return _SOURCES.names()


def get_source(name: str) -> Source:
    """The source registered as `name`; ConfigError naming the accepted names otherwise."""
    return _SOURCES.get(name)


def check_source_options(name: str, options: dict[str, object]) -> None:
    """Raise ConfigError if `options` holds a key that neither `name`'s fetch nor load takes."""
    source = get_source(name)
    accepted = set(COMMON_OPTIONS) | {
        parameter
        for function in (source.fetch, source.load)
        for parameter in inspect.signature(function).parameters
        if parameter not in ("data_dir", "options")
    }
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ConfigError(
            f"dataset {name!r} has no option {', '.join(unknown)}; "
            f"accepted: {', '.join(sorted(accepted))}"
        )


def _accepted(function: Callable[..., object], options: dict) -> dict:
    """The options `function`'s signature names."""
    parameters = inspect.signature(function).parameters
    return {key: value for key, value in options.items() if key in parameters}


def _call_with_accepted(function: Callable[..., object], data_dir: Path, options: dict) -> object:
    """Call `function(data_dir, **options)` with only the options its signature names."""
    return function(data_dir, **_accepted(function, options))


def fetch_source(name: str, data_dir: str | Path, **options: object) -> None:
    """Put dataset `name`'s files below `data_dir` (decompress, or download where allowed)."""
    check_source_options(name, options)
    _call_with_accepted(get_source(name).fetch, Path(data_dir), options)


def source_shape(name: str, **options: object) -> tuple[int, int, int]:
    """The (C, H, W) of dataset `name`'s images with `options`, reading no file."""
    check_source_options(name, options)
    shape = get_source(name).shape
    return shape(**_accepted(shape, options))


def load_source(name: str, data_dir: str | Path, **options: object) -> SourceData:
    """Read dataset `name` from below `data_dir` into uint8 tensors."""
    check_source_options(name, options)
    return _call_with_accepted(get_source(name).load, Path(data_dir), options)  # type: ignore[return-value]


# --------------------------------------------------------------------------- Fashion-MNIST


def _fashion_mnist_raw_dir(data_dir: Path) -> Path:
    return data_dir / "FashionMNIST" / "raw"


def _fetch_fashion_mnist(
    data_dir: Path, download: bool = True, debian_dir: str | Path = DEBIAN_FASHION_MNIST_DIR
) -> None:
    """Decompress the Debian package's gzip files into `<data_dir>/FashionMNIST/raw/`, or download.

    torchvision reads the unzipped idx files from that folder; the Debian `.gz` files differ in md5
    from torchvision's download list, so they are decompressed rather than linked.
    """
    raw_dir = _fashion_mnist_raw_dir(data_dir)
    if all((raw_dir / file).is_file() for file in FASHION_MNIST_FILES):
        return
    debian = Path(debian_dir)
    if all((debian / f"{file}.gz").is_file() for file in FASHION_MNIST_FILES):
        raw_dir.mkdir(parents=True, exist_ok=True)
        for file in FASHION_MNIST_FILES:
            # a temporary name of this process's own: parallel jobs may unpack at the same time
            with (
                gzip.open(debian / f"{file}.gz", "rb") as packed,
                atomic_file(raw_dir / file) as unpacked,
            ):
                shutil.copyfileobj(packed, unpacked)
        return
    failure = "downloading is disabled (dataset.download=false)"
    if download:
        try:
            FashionMNIST(str(data_dir), download=True)
            return
        except (RuntimeError, OSError) as error:
            failure = f"the torchvision download failed: {error}"
    raise ConfigError(
        f"Fashion-MNIST not found: no idx files in {raw_dir}, no Debian files "
        f"{', '.join(f + '.gz' for f in FASHION_MNIST_FILES)} in {debian}, and {failure}. "
        "Install the Debian package dataset-fashion-mnist, or allow the torchvision download "
        "(dataset.download=true with network access)."
    )


@register_source("fashion_mnist", shape=lambda: FASHION_MNIST_SHAPE, fetch=_fetch_fashion_mnist)
def load_fashion_mnist(data_dir: Path) -> SourceData:
    """Fashion-MNIST through torchvision's `FashionMNIST` reader: 10 classes of 28×28×1.

    `verify` does not apply: torchvision checks only that the unzipped idx files exist.
    """
    splits = []
    for train in (True, False):
        try:
            dataset = FashionMNIST(str(data_dir), train=train, download=False)
        except RuntimeError as error:
            raise ConfigError(
                f"Fashion-MNIST idx files missing in {_fashion_mnist_raw_dir(data_dir)} ({error}); "
                "run prepare_data() first, which decompresses the Debian files or downloads them"
            ) from error
        splits.append(SplitData(dataset.data.unsqueeze(1).contiguous(), dataset.targets.long()))
    return SourceData(train=splits[0], test=splits[1], class_names=list(dataset.classes))


# --------------------------------------------------------------------------- CIFAR


def _unverified(dataset_class: type[CIFAR10]) -> type[CIFAR10]:
    """`dataset_class` with its md5 checks dropped: files only need to exist in the same format."""
    return type(
        f"Unverified{dataset_class.__name__}",
        (dataset_class,),
        {
            "train_list": [[file, None] for file, _ in dataset_class.train_list],
            "test_list": [[file, None] for file, _ in dataset_class.test_list],
            "meta": {**dataset_class.meta, "md5": None},
        },
    )


def _cifar_class(dataset_class: type[CIFAR10], verify: bool) -> type[CIFAR10]:
    return dataset_class if verify else _unverified(dataset_class)


def _cifar_files_present(data_dir: Path, dataset_class: type[CIFAR10]) -> bool:
    folder = data_dir / dataset_class.base_folder
    files = [file for file, _ in dataset_class.train_list + dataset_class.test_list]
    return all((folder / file).is_file() for file in [*files, dataset_class.meta["filename"]])


def _fetch_cifar(data_dir: Path, dataset_class: type[CIFAR10], download: bool) -> None:
    """Download and extract the official archive unless the files are already there."""
    if _cifar_files_present(data_dir, dataset_class):
        return
    folder = data_dir / dataset_class.base_folder
    failure = "downloading is disabled (dataset.download=false)"
    if download:
        try:
            download_and_extract_archive(
                dataset_class.url,
                str(data_dir),
                filename=dataset_class.filename,
                md5=dataset_class.tgz_md5,
            )
            return
        except (RuntimeError, OSError) as error:
            failure = f"the torchvision download failed: {error}"
    raise ConfigError(
        f"{dataset_class.__name__} files not found in {folder} and {failure}. Put the official "
        "python-version files there, or allow the download (dataset.download=true with network)."
    )


def _fetch_cifar10(data_dir: Path, download: bool = True) -> None:
    _fetch_cifar(data_dir, CIFAR10, download)


def _fetch_cifar100(data_dir: Path, download: bool = True) -> None:
    _fetch_cifar(data_dir, CIFAR100, download)


def _read_cifar(data_dir: Path, dataset_class: type[CIFAR10], verify: bool, train: bool) -> CIFAR10:
    """One split through torchvision's CIFAR reader; ConfigError if files are missing or altered."""
    try:
        return _cifar_class(dataset_class, verify)(str(data_dir), train=train, download=False)
    except RuntimeError as error:
        hint = (
            "their md5 differs from the official files': set dataset.verify=false to accept "
            "other files in the same format"
            if verify and _cifar_files_present(data_dir, dataset_class)
            else "run prepare_data() first, which downloads them"
        )
        raise ConfigError(
            f"{dataset_class.__name__} files in {data_dir / dataset_class.base_folder} "
            f"cannot be read ({error}); {hint}"
        ) from error


def _cifar_images(dataset: CIFAR10) -> torch.Tensor:
    """torchvision's HWC uint8 array as a contiguous [N, 3, 32, 32] tensor."""
    return torch.from_numpy(np.ascontiguousarray(dataset.data.transpose(0, 3, 1, 2)))


@register_source("cifar10", shape=lambda: CIFAR_SHAPE, fetch=_fetch_cifar10)
def load_cifar10(data_dir: Path, verify: bool = True) -> SourceData:
    """CIFAR-10 through torchvision's `CIFAR10` reader (md5-checked unless `verify` is false)."""
    splits = []
    for train in (True, False):
        dataset = _read_cifar(data_dir, CIFAR10, verify, train)
        splits.append(SplitData(_cifar_images(dataset), torch.tensor(dataset.targets)))
    return SourceData(train=splits[0], test=splits[1], class_names=list(dataset.classes))


def _cifar100_coarse_labels(data_dir: Path, train: bool) -> torch.Tensor:
    """The superclass labels, which torchvision's reader does not keep, from the same file."""
    files = CIFAR100.train_list if train else CIFAR100.test_list
    labels: list[int] = []
    for file, _ in files:
        with (data_dir / CIFAR100.base_folder / file).open("rb") as handle:
            labels.extend(pickle.load(handle, encoding="latin1")["coarse_labels"])
    return torch.tensor(labels)


def _cifar100_coarse_names(data_dir: Path) -> list[str]:
    with (data_dir / CIFAR100.base_folder / CIFAR100.meta["filename"]).open("rb") as handle:
        return list(pickle.load(handle, encoding="latin1")["coarse_label_names"])


@register_source("cifar100", shape=lambda: CIFAR_SHAPE, fetch=_fetch_cifar100)
def load_cifar100(data_dir: Path, verify: bool = True) -> SourceData:
    """CIFAR-100 (fine labels) through torchvision's `CIFAR100` reader, plus superclass labels."""
    splits = []
    for train in (True, False):
        dataset = _read_cifar(data_dir, CIFAR100, verify, train)
        splits.append(
            SplitData(
                _cifar_images(dataset),
                torch.tensor(dataset.targets),
                _cifar100_coarse_labels(data_dir, train),
            )
        )
    return SourceData(
        train=splits[0],
        test=splits[1],
        class_names=list(dataset.classes),
        coarse_names=_cifar100_coarse_names(data_dir),
    )


# --------------------------------------------------------------------------- synthetic

SYNTHETIC_GENERATION_SEED = 20240917
"""Fixed seed of the synthetic images: the data set is the same for every subsampling seed."""


def synthetic_shape(channels: int = 1, image_size: int = 8) -> tuple[int, int, int]:
    """(C, H, W) of the synthetic images (the defaults are `load_synthetic`'s)."""
    return (
        check_count("dataset.channels", channels),
        check_count("dataset.image_size", image_size),
        image_size,
    )


@register_source("synthetic", shape=synthetic_shape)
def load_synthetic(
    data_dir: Path,
    num_classes: int = 10,
    train_per_class: int = 200,
    test_per_class: int = 50,
    channels: int = 1,
    image_size: int = 8,
    noise: float = 64.0,
) -> SourceData:
    """A small learnable data set generated without files, for fast tests of the whole pipeline.

    Class k has a mean image m_k with pixels uniform in [64, 192]; a sample is
    `clamp(round(m_k + noise · z), 0, 255)` with z standard normal per pixel. Labels are sorted by
    class within each split (train: `train_per_class` per class, test: `test_per_class`).
    """
    check_count("dataset.num_classes", num_classes, least=2)
    check_count("dataset.train_per_class", train_per_class)
    check_count("dataset.test_per_class", test_per_class)
    shape = synthetic_shape(channels, image_size)
    generator = torch.Generator().manual_seed(SYNTHETIC_GENERATION_SEED)
    means = 64.0 + 128.0 * torch.rand((num_classes, *shape), generator=generator)

    def sample(per_class: int) -> SplitData:
        labels = torch.arange(num_classes).repeat_interleave(per_class)
        noisy = means[labels] + noise * torch.randn((len(labels), *shape), generator=generator)
        return SplitData(noisy.round().clamp(0, 255).to(torch.uint8), labels)

    return SourceData(
        train=sample(train_per_class),
        test=sample(test_per_class),
        class_names=[f"class_{k}" for k in range(num_classes)],
    )
