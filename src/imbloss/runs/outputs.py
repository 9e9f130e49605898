"""Writing a run's files atomically (temporary file, then rename); their names:
imbloss.runs.layout."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np


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


def write_predictions(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Named arrays into one ``.npz``: integer arrays (targets) as int64, others as float32."""
    stored = {
        name: array.astype(np.int64 if np.issubdtype(array.dtype, np.integer) else np.float32)
        for name, array in arrays.items()
    }
    with atomic_file(path) as handle:
        np.savez(handle, **stored)
