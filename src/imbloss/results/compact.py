"""A finished run's ``predictions.npz`` made small enough to commit, and nothing lost that the
report reads.

A run writes six float32/int64 arrays (``imbloss.runs.layout.PREDICTION_KEYS``): about 1.3 MB for a
Fashion-MNIST run; the compact file is about 360 KB. The protocol's test split is a subset of the
whole one, predicted in the same forward pass, so its arrays are rows of the whole split's. The
compact file keeps, compressed:

- ``full_target``;
- ``full_log_probs`` and ``last_full_log_probs``: the natural logarithms of the probabilities as
  float16 (``last_full_log_probs`` left out where the selected weights are the last ones);
- ``test_positions``: where each protocol test sample sits in the whole split.

Log-probabilities, not probabilities, because float16 keeps their order: probabilities below
6e-5 lose their resolution in float16 and the one-vs-rest AUC moved by up to 0.009 on a real run,
while from float16 log-probabilities it moved by 2e-7. A row whose predicted class float16 would
change (a near-tie rounded to a tie) is also kept in float32, so G-mean, accuracy and recall
recompute exactly. :func:`imbloss.runs.readers.read_predictions` expands the file back to the
six arrays.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from imbloss.errors import RunFileError
from imbloss.runs.layout import PREDICTIONS_FILE, RunFolder
from imbloss.runs.outputs import atomic_file
from imbloss.runs.readers import (
    COMPACT_POSITIONS_KEY,
    EXACT_ROWS,
    EXACT_VALUES,
    expand_compact,
    read_predictions,
)

# float16's relative step (2^-11 of a log-probability l moves p = e^l by up to |l| * 2^-11)
LOG_STEP = 2.0**-11


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


def log_probs(name: str, probs: np.ndarray) -> dict[str, np.ndarray]:
    """``log(probs)`` as float16 under ``name``; the rows whose predicted class float16 would
    change (a near-tie rounded to a tie) also as float32, under ``<name>_exact`` with their
    positions in ``<name>_rows``."""
    with np.errstate(divide="ignore"):  # a probability of 0 is -inf, and stays 0
        logs = np.log(probs.astype(np.float32))
    half = logs.astype(np.float16)
    rows = np.flatnonzero(half.astype(np.float32).argmax(1) != probs.argmax(1)).astype(np.int32)
    if not len(rows):
        return {name: half}
    return {name: half, f"{name}{EXACT_ROWS}": rows, f"{name}{EXACT_VALUES}": logs[rows]}


def compact_arrays(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The compact file's arrays for the six arrays a run writes."""
    compact = {
        "full_target": arrays["full_target"].astype(np.int64),
        **log_probs("full_log_probs", arrays["full_probs"]),
        COMPACT_POSITIONS_KEY: protocol_positions(arrays),
    }
    if not np.array_equal(arrays["last_full_probs"], arrays["full_probs"]):
        compact |= log_probs("last_full_log_probs", arrays["last_full_probs"])
    return compact


def compact_predictions(path: Path) -> bool:
    """Rewrite ``path`` in the compact form (atomically); False if it already is. The expanded
    result is checked before the file is replaced: targets equal, every predicted class the
    same, probabilities within float16's relative step of their logarithms."""
    with np.load(path, allow_pickle=False) as stored:
        if COMPACT_POSITIONS_KEY in stored.files:
            return False
    original = read_predictions(path)
    compact = compact_arrays(original)
    expanded = expand_compact(compact)
    for name, array in original.items():
        if array.dtype.kind == "i":
            same = np.array_equal(expanded[name], array)
        else:
            same = np.array_equal(expanded[name].argmax(1), array.argmax(1)) and np.allclose(
                expanded[name],
                array,
                rtol=LOG_STEP * (1 - np.log(np.maximum(array, 1e-30))),
                atol=0,
            )
        if not same:
            raise RunFileError(f"{path}: compacting would change {name}; left as it was")
    with atomic_file(path) as handle:
        np.savez_compressed(handle, **compact)
    return True


def compact_tree(root: Path) -> int:
    """Compact the predictions of every finished run below ``root``; the number rewritten."""
    written = 0
    for path in sorted(Path(root).rglob(PREDICTIONS_FILE)):
        if RunFolder(path.parent).metrics.is_file():
            written += compact_predictions(path)
    return written
