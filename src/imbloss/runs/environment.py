"""Where a run ran: the ``environment`` of ``metrics.json``.

A seed pins a run only together with its thread count and its CPU model (the same default run
gave a whole-split G-mean of 80.91 on a Zen 5 and 81.19 on an Intel Xeon), so every run records

- ``commit``: the repository's ``git`` commit (``<sha>-dirty`` when tracked code or configuration
  differ from it; ``null`` outside a git checkout);
- ``torch`` and ``lightning``: the versions;
- ``device``: the CPU's model name, or the GPU's name for a run on a GPU;
- ``cpu_id``: vendor, family, model and stepping (``GenuineIntel 6/143/8``): a virtual machine
  may report only a generic model name;
- ``bf16_isa``: the CPU's native bf16 instruction sets among :data:`BF16_FLAGS` (empty: bf16
  autocast is emulated on this CPU, and slow);
- ``threads``: ``torch.get_num_threads()``.
"""

from __future__ import annotations

import os
import platform
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import lightning
import torch

# /proc/cpuinfo flags of native bf16 arithmetic: x86 AVX512-BF16, AMX-BF16, AVX-NE-CONVERT;
# the Arm "bf16" feature.
BF16_FLAGS = ("avx512_bf16", "amx_bf16", "avx_ne_convert", "bf16")
CPUINFO = Path("/proc/cpuinfo")
# what a run's code is: a change elsewhere (results, docs) does not make it dirty
CODE_PATHS = ("src", "conf", "train.py", "pyproject.toml")


def _cpuinfo_fields(text: str) -> dict[str, str]:
    """The first processor's ``key: value`` lines of ``/proc/cpuinfo``."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def cpu_model(cpuinfo: str | None = None) -> str:
    """The CPU's model name (``/proc/cpuinfo``; ``platform.processor()`` elsewhere)."""
    fields = _cpuinfo_fields(cpuinfo if cpuinfo is not None else _read_cpuinfo())
    return fields.get("model name") or fields.get("Model") or platform.processor() or "unknown"


def cpu_id(cpuinfo: str | None = None) -> str | None:
    """``vendor family/model/stepping`` of the CPU, or None where ``/proc/cpuinfo`` lacks them."""
    fields = _cpuinfo_fields(cpuinfo if cpuinfo is not None else _read_cpuinfo())
    parts = [fields.get(key) for key in ("cpu family", "model", "stepping")]
    if "vendor_id" not in fields or None in parts:
        return None
    return f"{fields['vendor_id']} {'/'.join(parts)}"  # type: ignore[arg-type]


def bf16_isa(cpuinfo: str | None = None) -> list[str]:
    """The native bf16 instruction sets the CPU reports, in :data:`BF16_FLAGS` order."""
    fields = _cpuinfo_fields(cpuinfo if cpuinfo is not None else _read_cpuinfo())
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    return [flag for flag in BF16_FLAGS if flag in flags]


def _read_cpuinfo() -> str:
    try:
        return CPUINFO.read_text()
    except OSError:
        return ""


@cache
def code_commit(repo: str | None = None) -> str | None:
    """The commit of the repository at ``repo`` (default ``$IMBLOSS_ROOT``), ``-dirty`` appended
    when its tracked code differs from it; None without git or outside a checkout."""
    root = repo or os.environ.get("IMBLOSS_ROOT") or str(Path.cwd())

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()

    try:
        sha = git("rev-parse", "HEAD")
        changed = git("status", "--porcelain", "--untracked-files=no", "--", *CODE_PATHS)
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha}-dirty" if changed else sha


def run_environment(device: torch.device | str = "cpu") -> dict[str, Any]:
    """The ``environment`` of a run on ``device``."""
    device = torch.device(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()
    return {
        "commit": code_commit(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "device": name,
        "cpu_id": cpu_id(),
        "bf16_isa": bf16_isa(),
        "threads": torch.get_num_threads(),
    }
