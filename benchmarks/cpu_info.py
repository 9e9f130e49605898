"""The CPU a benchmark ran on: its model name and the bf16 instruction sets it offers."""

from __future__ import annotations

import platform
from pathlib import Path

BF16_FLAGS = ("avx512_bf16", "amx_bf16", "amx_tile", "avx512_fp16", "avx_vnni")


def describe_cpu(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """``CPU: <model>, <n> logical CPUs; bf16 instruction sets: <flags>`` (Linux; elsewhere the
    platform's processor name)."""
    if not cpuinfo.is_file():
        return f"CPU: {platform.processor() or 'unknown'}"
    lines = cpuinfo.read_text().splitlines()
    models = _values(lines, "model name")
    flags = (_values(lines, "flags") or [""])[0].split()
    family = (_values(lines, "cpu family") or ["?"])[0]
    model_no = (_values(lines, "model") or ["?"])[0]
    offered = [flag for flag in BF16_FLAGS if flag in flags] or ["none"]
    return (
        f"CPU: {models[0] if models else 'unknown'} (family {family}, model {model_no}), "
        f"{len(models)} logical CPUs; bf16 instruction sets: {', '.join(offered)}"
    )


def _values(lines: list[str], key: str) -> list[str]:
    """The values of ``key : value`` lines whose key is exactly ``key``."""
    pairs = (line.split(":", 1) for line in lines if ":" in line)
    return [value.strip() for name, value in pairs if name.strip() == key]
