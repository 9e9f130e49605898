"""A Lightning trainer that writes and prints nothing: no logger, checkpoint, bar or summary."""

from __future__ import annotations

from typing import Any

import lightning as L


def quiet_trainer(**settings: Any) -> L.Trainer:
    """``L.Trainer(**settings)`` without logger, checkpointing, progress bar, model summary or
    sanity validation (each can be turned back on through ``settings``)."""
    defaults = {
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
    }
    return L.Trainer(**{**defaults, **settings})
