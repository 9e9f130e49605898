"""The files a run leaves in its folder, each written atomically (temporary file, then rename)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np

METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "predictions.npz"
ERROR_FILE = "error.json"


@contextmanager
def atomic_file(path: Path) -> Iterator[IO[bytes]]:
    """Open a temporary file beside ``path``; on success it replaces ``path`` in one rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def write_json(path: Path, payload: Mapping[str, Any]) -> None:
    """Write ``payload`` as indented JSON (NaN is refused: use None for a missing figure)."""
    text = json.dumps(payload, indent=2, allow_nan=False) + "\n"
    with atomic_file(path) as handle:
        handle.write(text.encode())


def write_predictions(path: Path, target: np.ndarray, probs: np.ndarray) -> None:
    """``target`` [N] int64 and ``probs`` [N, C] float32 of one test evaluation."""
    with atomic_file(path) as handle:
        np.savez(handle, target=target.astype(np.int64), probs=probs.astype(np.float32))
