"""glibc malloc tuning: the entry point re-executes itself once with the allocator variables."""

import os
import subprocess
import sys

import pytest

from imbloss.runtime import MALLOC_SETTINGS, OPT_OUT_VARIABLE, is_glibc, missing_malloc_settings

PROBE = (
    "import os, sys; from imbloss.runtime import ensure_malloc_tuning; "
    "print('start', flush=True); ensure_malloc_tuning(); "
    "env = os.environ.get; "
    "print(env('MALLOC_TOP_PAD_'), env('MALLOC_MMAP_THRESHOLD_'), sys.argv[1:])"
)


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in MALLOC_SETTINGS}
    env.pop(OPT_OUT_VARIABLE, None)
    env.update(extra)
    return env


def test_missing_settings() -> None:
    assert missing_malloc_settings({}) == dict(MALLOC_SETTINGS)
    user_value = {"MALLOC_TOP_PAD_": "1"}
    assert "MALLOC_TOP_PAD_" not in missing_malloc_settings(user_value)
    assert missing_malloc_settings({OPT_OUT_VARIABLE: "0"}) == {}


@pytest.mark.skipif(not is_glibc(), reason="glibc only")
def test_reexec_sets_variables_and_keeps_arguments() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, "loss=pf", "ir=10"],
        env=_clean_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    # 'start' twice: the first process printed it, then replaced itself.
    assert out[0] == "start" and out[1] == "start"
    assert out[2] == (
        f"{MALLOC_SETTINGS['MALLOC_TOP_PAD_']} {MALLOC_SETTINGS['MALLOC_MMAP_THRESHOLD_']} "
        "['loss=pf', 'ir=10']"
    )


def test_opt_out_keeps_environment() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        env=_clean_env(**{OPT_OUT_VARIABLE: "0"}),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    assert out[:2] == ["start", "None None []"]
