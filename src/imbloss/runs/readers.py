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

# The key that marks a compact predictions file (imbloss.results.compact).
COMPACT_POSITIONS_KEY = "test_positions"
# suffixes of a compact array's rows kept in float32: their positions and their values
EXACT_ROWS, EXACT_VALUES = "_rows", "_exact"


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


def _probabilities(arrays: dict[str, np.ndarray], name: str) -> np.ndarray:
    """float32 ``exp`` of the log-probabilities ``name``, its float32 rows put back."""
    logs = arrays[name].astype(np.float32)
    if name + EXACT_ROWS in arrays:
        logs[arrays[name + EXACT_ROWS]] = arrays[name + EXACT_VALUES]
    return np.exp(logs)


def expand_compact(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The six arrays of ``imbloss.runs.layout.PREDICTION_KEYS`` from a compact file's (see
    :mod:`imbloss.results.compact`): probabilities as float32 ``exp`` of the stored
    log-probabilities, the protocol's test split as the rows ``test_positions`` of the whole
    split, the last weights' as the selected ones where absent."""
    positions = arrays[COMPACT_POSITIONS_KEY]
    full_probs = _probabilities(arrays, "full_log_probs")
    last = "last_full_log_probs"
    last_full_probs = _probabilities(arrays, last) if last in arrays else full_probs
    full_target = arrays["full_target"].astype(np.int64)
    return {
        "target": full_target[positions],
        "probs": full_probs[positions],
        "full_target": full_target,
        "full_probs": full_probs,
        "last_probs": last_full_probs[positions],
        "last_full_probs": last_full_probs,
    }


def read_predictions(path: Path) -> dict[str, np.ndarray]:
    """Every array of ``predictions.npz`` (``target``, ``probs``, ...), loaded in full; a compact
    file (committed results) is expanded to the same arrays."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise _unreadable(path, error, "predictions file") from error
    if COMPACT_POSITIONS_KEY in arrays:
        try:
            return expand_compact(arrays)
        except (KeyError, IndexError) as error:
            raise _unreadable(path, error, "compact predictions file") from error
    return arrays


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A Lightning checkpoint, loaded on the CPU with ``weights_only=True`` (no code runs)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile) as error:
        raise _unreadable(path, error, "checkpoint") from error
