"""A finished run's ``predictions.npz`` made small enough to commit, and nothing lost that the
report reads.

A run writes six float32/int64 arrays (``imbloss.layout.PREDICTION_KEYS``): about 1.2 MB for a
Fashion-MNIST run. The protocol's test split is a subset of the whole one, predicted in the same
forward pass, so its arrays are rows of the whole split's. The compact file keeps:

- ``full_target`` and ``full_probs`` / ``last_full_probs`` as float16, compressed
  (``last_full_probs`` left out where the selected weights are the last ones);
- ``test_positions``: where each protocol test sample sits in the whole split.

:func:`imbloss.readers.read_predictions` expands it back to the six arrays (probabilities as
float32 from float16: within 2^-11 relative), so every figure recomputes from it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from imbloss.errors import RunFileError
from imbloss.layout import PREDICTIONS_FILE, RunFolder
from imbloss.outputs import atomic_file
from imbloss.readers import COMPACT_POSITIONS_KEY, read_predictions


def protocol_positions(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """The row of the whole split that each protocol test row equals (target and both weight
    sets' probabilities alike). Rows that agree in all three are interchangeable, so any of them
    serves. A RunFileError if some protocol row is in no whole-split row."""
    full = np.column_stack([arrays["full_target"], arrays["full_probs"], arrays["last_full_probs"]])
    part = np.column_stack([arrays["target"], arrays["probs"], arrays["last_probs"]])
    where = {row.tobytes(): i for i, row in enumerate(full.astype(np.float64))}
    try:
        return np.array([where[row.tobytes()] for row in part.astype(np.float64)], np.int32)
    except KeyError as error:
        raise RunFileError(
            "a protocol test prediction is not among the whole test split's; not compacted"
        ) from error


def compact_arrays(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The compact file's arrays for the six arrays a run writes."""
    compact = {
        "full_target": arrays["full_target"].astype(np.int64),
        "full_probs": arrays["full_probs"].astype(np.float16),
        COMPACT_POSITIONS_KEY: protocol_positions(arrays),
    }
    if not np.array_equal(arrays["last_full_probs"], arrays["full_probs"]):
        compact["last_full_probs"] = arrays["last_full_probs"].astype(np.float16)
    return compact


def compact_predictions(path: Path) -> bool:
    """Rewrite ``path`` in the compact form (atomically); False if it already is. The expanded
    result is checked against the original before the file is replaced."""
    with np.load(path, allow_pickle=False) as stored:
        if COMPACT_POSITIONS_KEY in stored.files:
            return False
    original = read_predictions(path)
    compact = compact_arrays(original)
    with atomic_file(path) as handle:
        np.savez_compressed(handle, **compact)
    expanded = read_predictions(path)
    for name, array in original.items():
        expected = array if array.dtype.kind == "i" else array.astype(np.float16).astype(np.float32)
        if not np.array_equal(expanded[name], expected):
            raise RunFileError(f"{path}: compacting changed {name}")
    return True


def compact_tree(root: Path) -> int:
    """Compact the predictions of every finished run below ``root``; the number rewritten."""
    written = 0
    for path in sorted(Path(root).rglob(PREDICTIONS_FILE)):
        if RunFolder(path.parent).metrics.is_file():
            written += compact_predictions(path)
    return written
