"""Run files are written atomically and never half-written."""

import json
from pathlib import Path

import numpy as np
import pytest

from imbloss.runs.outputs import write_json, write_predictions


def test_write_json_roundtrip_and_no_temporaries(tmp_path: Path) -> None:
    path = tmp_path / "run" / "metrics.json"
    write_json(path, {"gmean": 0.5, "per_class_recall": [0.25, 1.0], "minority_acc": None})
    assert json.loads(path.read_text()) == {
        "gmean": 0.5,
        "per_class_recall": [0.25, 1.0],
        "minority_acc": None,
    }
    assert [p.name for p in path.parent.iterdir()] == ["metrics.json"]


def test_failed_write_keeps_previous_file(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    write_json(path, {"gmean": 0.5})
    with pytest.raises(ValueError, match="Out of range float values"):
        write_json(path, {"gmean": float("nan")})
    assert json.loads(path.read_text()) == {"gmean": 0.5}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_predictions_roundtrip(tmp_path: Path) -> None:
    target = np.array([0, 1, 1])
    probs = np.array([[0.9, 0.1], [0.3, 0.7], [0.5, 0.5]])
    write_predictions(tmp_path / "predictions.npz", {"target": target, "probs": probs})
    loaded = np.load(tmp_path / "predictions.npz")
    assert loaded["probs"].dtype == np.float32
    assert loaded["target"].dtype == np.int64
    np.testing.assert_array_equal(loaded["target"], target)
    np.testing.assert_allclose(loaded["probs"], probs, rtol=1e-6)
