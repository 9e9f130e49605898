"""Committed results: compact predictions, and the figure of each method against the reference."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from imbloss.errors import RunFileError
from imbloss.results.compact import compact_arrays, compact_predictions
from imbloss.results.figure import Point, against_pf_figure
from imbloss.runs.readers import expand_compact, read_predictions

# --- compact predictions ----------------------------------------------------------------------


def _predictions(rng: np.random.Generator, same_weights: bool = False) -> dict[str, np.ndarray]:
    full_target = np.repeat(np.arange(4), 25)
    logits = rng.normal(size=(100, 4)).astype(np.float32)
    full_probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    last = full_probs if same_weights else np.roll(full_probs, 1, axis=1)
    positions = np.sort(rng.choice(100, size=40, replace=False))
    return {
        "target": full_target[positions],
        "probs": full_probs[positions],
        "full_target": full_target,
        "full_probs": full_probs,
        "last_probs": last[positions],
        "last_full_probs": last,
    }


@pytest.mark.parametrize("same_weights", [False, True])
def test_compact_predictions_expand_to_the_arrays_written(
    tmp_path: Path, same_weights: bool
) -> None:
    arrays = _predictions(np.random.default_rng(0), same_weights)
    path = tmp_path / "run" / "predictions.npz"
    path.parent.mkdir()
    np.savez(path, **arrays)
    before = path.stat().st_size
    assert compact_predictions(path) is True
    assert compact_predictions(path) is False  # already compact
    with np.load(path) as stored:
        assert ("last_full_log_probs" in stored.files) is not same_weights
        assert stored["full_log_probs"].dtype == np.float16
    assert path.stat().st_size < before / 2
    expanded = read_predictions(path)
    assert set(expanded) == set(arrays)
    for name, array in arrays.items():
        if array.dtype.kind == "f":
            assert expanded[name].dtype == np.float32
            # |log p| < 6 here: p within 6 * 2^-11 relative; every predicted class the same
            np.testing.assert_allclose(expanded[name], array, rtol=6 * 2**-11, atol=0)
            np.testing.assert_array_equal(expanded[name].argmax(1), array.argmax(1))
        else:
            np.testing.assert_array_equal(expanded[name], array)


def test_a_near_tie_keeps_its_row_in_float32() -> None:
    arrays = _predictions(np.random.default_rng(2))
    tie = np.array([0.25, 0.25 * (1 + 2**-14), 0.25, 0.25 * (1 - 2**-14)], np.float32)
    for key in ("full_probs", "last_full_probs"):
        arrays[key] = arrays[key].copy()
        arrays[key][7] = tie  # float16 would make classes 0 and 1 equal: argmax 0, not 1
    arrays["probs"] = arrays["full_probs"][np.isin(np.arange(100), [7, 8, 9])]
    arrays["last_probs"] = arrays["last_full_probs"][[7, 8, 9]]
    arrays["target"] = arrays["full_target"][[7, 8, 9]]
    compact = compact_arrays(arrays)
    assert compact["full_log_probs"].dtype == np.float16
    np.testing.assert_array_equal(compact["full_log_probs_rows"], [7])  # that row alone
    assert compact["full_log_probs_exact"].dtype == np.float32
    expanded = expand_compact(compact)
    for key in ("full_probs", "last_full_probs", "probs"):
        np.testing.assert_array_equal(expanded[key].argmax(1), arrays[key].argmax(1))
    assert expanded["full_probs"][7].argmax() == 1


def test_compact_refuses_a_protocol_row_not_in_the_whole_split() -> None:
    arrays = _predictions(np.random.default_rng(1))
    arrays["probs"] = arrays["probs"].copy()
    arrays["probs"][3, 0] += 0.5
    with pytest.raises(RunFileError, match="not among the whole test split"):
        compact_arrays(arrays)


# --- verdicts ---------------------------------------------------------------------------------


def test_figure_against_pf_marks_complete_cells_and_shares_one_x_range() -> None:
    nan = math.nan
    points = [
        Point(100, "WCE-loss", 5, -1.0, -2.0, 0.0, complete=True),
        Point(100, "FL", 2, -3.0, -40.0, 34.0, complete=False),  # 2 seeds: off the panel
        Point(200, "WCE-loss", 0, nan, nan, nan, complete=False),
        Point(200, "FL", 0, nan, nan, nan, complete=False),
    ]
    figure = against_pf_figure(points, ["WCE-loss", "FL"], similar_pp=2.0)
    ir100, ir200 = figure.axes
    assert [ir100.get_title(), ir200.get_title()] == ["IR=100", "IR=200"]
    markers = {
        (float(line.get_xdata()[0]), float(line.get_ydata()[0])): line.get_markerfacecolor()
        for line in ir100.lines
        if line.get_marker() == "o"
    }
    assert set(markers) == {(-1.0, 0.0), (-3.0, 1.0)}
    assert markers[(-3.0, 1.0)] == "white" and markers[(-1.0, 0.0)] != "white"
    # the x range: the 5-seed interval (±2), the 2-seed mean (3), at least 2 x 2.0: 4, +5 %
    assert ir100.get_xlim() == pytest.approx((-4.2, 4.2))
    assert ir200.get_xlim() == ir100.get_xlim()
    assert [text.get_text() for text in ir200.texts] == ["no runs yet"]
    assert not [line for line in ir200.lines if line.get_marker() == "o"]
