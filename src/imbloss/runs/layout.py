"""The run-folder contract: the name of every file a run leaves, shared by writer and reader.

A run's folder (its Hydra output folder) holds::

    .hydra/config.yaml     the resolved configuration (written by Hydra)
    metrics.json           the figures of a finished run (written last, atomically)
    predictions.npz        the test predictions every figure comes from (PREDICTION_KEYS)
    csv/metrics.csv        per-epoch curves (the CSV logger, conf/logger/csv.yaml)
    checkpoints/best.ckpt  the checkpoint selected on validation G-mean (conf/callbacks/)
    checkpoints/last.ckpt  the state after the latest epoch, to resume from (conf/callbacks/)
    checkpoints/last_stacked.pt  a stacked member stopped early by a halving rung: its slice of
                           the pass's state, to continue from in a later stacked pass
    error.json             only for a failed member of a multirun
    .hydra/claimed/        the configuration that made the folder's results (imbloss.runs.folder)
    wandb/run_id           the W&B run id, kept so that a resumed run continues its W&B run
    job.lock               only while a process trains in the folder: its lock (imbloss.runs.lock)

The pipeline writes through :class:`RunFolder`, the report reads through it; a new output file is
added here once. ``tests/test_layout.py`` checks that the configs put the logger's and the
checkpoint callback's files where this contract says.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "predictions.npz"
ERROR_FILE = "error.json"
CONFIG_FILE = Path(".hydra") / "config.yaml"
CURVES_FILE = Path("csv") / "metrics.csv"
BEST_CHECKPOINT_FILE = Path("checkpoints") / "best.ckpt"
LAST_CHECKPOINT_FILE = Path("checkpoints") / "last.ckpt"
STACKED_STATE_FILE = Path("checkpoints") / "last_stacked.pt"
CLAIM_DIR = Path(".hydra") / "claimed"
WANDB_ID_FILE = Path("wandb") / "run_id"
LOCK_FILE = "job.lock"
# Subfolders of a run folder; none of them holds another run.
RUN_SUBFOLDERS = frozenset({".hydra", "csv", "checkpoints", "wandb"})

# predictions.npz: (weights, test set) -> (target key, probabilities key). "selected" are the
# weights chosen on validation G-mean, "last" those after the final epoch; "test" is the
# protocol's test split, "full_test" the whole official test split of the task's classes.
PREDICTION_KEYS: dict[tuple[str, str], tuple[str, str]] = {
    ("selected", "test"): ("target", "probs"),
    ("selected", "full_test"): ("full_target", "full_probs"),
    ("last", "test"): ("target", "last_probs"),
    ("last", "full_test"): ("full_target", "last_full_probs"),
}


@dataclass(frozen=True)
class RunFolder:
    """The paths of one run's files (see the module docstring)."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @property
    def metrics(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def predictions(self) -> Path:
        return self.path / PREDICTIONS_FILE

    @property
    def error(self) -> Path:
        return self.path / ERROR_FILE

    @property
    def config(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def curves(self) -> Path:
        return self.path / CURVES_FILE

    @property
    def wandb_id(self) -> Path:
        return self.path / WANDB_ID_FILE

    @property
    def lock(self) -> Path:
        return self.path / LOCK_FILE

    @property
    def best_checkpoint(self) -> Path:
        return self.path / BEST_CHECKPOINT_FILE

    @property
    def last_checkpoint(self) -> Path:
        return self.path / LAST_CHECKPOINT_FILE

    @property
    def stacked_state(self) -> Path:
        return self.path / STACKED_STATE_FILE

    def is_run(self) -> bool:
        """A run folder: finished (metrics), failed (error) or begun (config) — any of the three."""
        return self.metrics.is_file() or self.error.is_file() or self.config.is_file()
