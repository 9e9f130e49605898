"""Reading a run's files back: a truncated or corrupt file is a RunFileError naming it."""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from imbloss.errors import RunFileError


def _unreadable(path: Path, error: BaseException, what: str) -> RunFileError:
    return RunFileError(
        f"{path} is not a readable {what} ({type(error).__name__}: {error}); "
        "remove it (or its run folder) to run that job again"
    )


def read_json_file(path: Path) -> dict[str, Any]:
    """The JSON object in ``path`` (``metrics.json``, ``error.json``)."""
    try:
        payload = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _unreadable(path, error, "JSON file") from error
    if not isinstance(payload, dict):
        raise RunFileError(f"{path} holds {type(payload).__name__}, not a JSON object")
    return payload


def read_predictions(path: Path) -> dict[str, np.ndarray]:
    """Every array of ``predictions.npz`` (``target``, ``probs``, ...), loaded in full."""
    try:
        with np.load(path, allow_pickle=False) as arrays:
            return {name: arrays[name] for name in arrays.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise _unreadable(path, error, "predictions file") from error


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A Lightning checkpoint, loaded on the CPU with ``weights_only=True`` (no code runs)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile) as error:
        raise _unreadable(path, error, "checkpoint") from error
