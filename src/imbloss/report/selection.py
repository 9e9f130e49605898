"""Choose one grid point per tuning on validation G-mean; its test figures are the ones reported.

The first source tunes each loss's hyperparameters on a grid (Du et al. 2021, Sec. IV-B/C) and
reports the best point. Here "best" is decided on the validation split only: within a tuning
group — same loss, same setting (dataset, protocol, model, sub-task, minority fraction, IR,
sampler, label noise), same
training and subsampling seeds — the run with the highest ``val_gmean`` is selected (ties: higher
``val_auc``, then the first run folder). The test figures never take part in the choice. A group
of one run (a parameter-free loss, or a single point) selects that run.
"""

from __future__ import annotations

import pandas as pd

from imbloss.report.runs import REPLICATE_COLUMNS, SETTING_COLUMNS, STATUS_OK

CELL_KEYS = ("loss", *SETTING_COLUMNS)
TUNING_KEYS = (*CELL_KEYS, *REPLICATE_COLUMNS)


def select_on_validation(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per tuning group: the ok run with the best validation G-mean.

    Adds ``grid_points`` (ok runs the choice was made among). Groups of several runs none of
    which has a validation G-mean cannot be decided and are left out.
    """
    ok = runs[runs["status"] == STATUS_OK]
    ranked = ok.sort_values(
        ["val_gmean", "val_auc", "run_dir"], ascending=[False, False, True], na_position="last"
    )
    grouped = ranked.groupby(list(TUNING_KEYS), dropna=False, sort=False)
    selected = grouped.head(1).copy()
    selected["grid_points"] = grouped["run_dir"].transform("size").loc[selected.index]
    decidable = (selected["grid_points"] == 1) | selected["val_gmean"].notna()
    return selected[decidable].sort_values(list(TUNING_KEYS)).reset_index(drop=True)


def undecided_groups(runs: pd.DataFrame, selected: pd.DataFrame) -> pd.DataFrame:
    """Tuning groups with ok runs but no selection (several runs, no validation G-mean)."""
    ok = runs[runs["status"] == STATUS_OK]
    keys = list(TUNING_KEYS)
    merged = ok[keys].drop_duplicates().merge(selected[keys], on=keys, how="left", indicator=True)
    return merged[merged["_merge"] == "left_only"].drop(columns="_merge")
