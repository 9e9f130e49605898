"""Process set-up that must happen before PyTorch is imported: the glibc allocator's thresholds.

On the CPU, glibc malloc returns the large activation buffers of every step to the kernel and maps
them again on the next one; the page faults dominate the epoch (system time ~44 %). Raising the
mmap/trim thresholds and the top pad keeps the memory in the heap. glibc reads these variables only
when the process starts, so :func:`ensure_malloc_tuning` re-executes the interpreter once with them
set. Set ``IMBLOSS_MALLOC_TUNING=0`` to opt out; variables the user already set are kept.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping, MutableMapping

MALLOC_SETTINGS: Mapping[str, str] = {
    "MALLOC_MMAP_THRESHOLD_": str(4 * 1024**3),
    "MALLOC_TRIM_THRESHOLD_": str(4 * 1024**3),
    "MALLOC_TOP_PAD_": str(1024**3),
}
OPT_OUT_VARIABLE = "IMBLOSS_MALLOC_TUNING"


def is_glibc() -> bool:
    """True where the C library is glibc (the variables mean nothing to musl or macOS)."""
    return platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def missing_malloc_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """The allocator variables that ``environ`` lacks, unless the user opted out."""
    if environ.get(OPT_OUT_VARIABLE, "1") == "0":
        return {}
    return {key: value for key, value in MALLOC_SETTINGS.items() if key not in environ}


def ensure_malloc_tuning(environ: MutableMapping[str, str] | None = None) -> None:
    """Re-execute this interpreter with the allocator variables set, if any is missing.

    Call it first thing in an entry point, before importing torch. Returns only when nothing needs
    to change (already set, opted out, or not glibc); otherwise the process image is replaced.
    """
    environ = os.environ if environ is None else environ
    missing = missing_malloc_settings(environ)
    if not missing or not is_glibc():
        return
    environ.update(missing)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], environ)
