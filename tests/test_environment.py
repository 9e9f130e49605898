"""Where a run ran: CPU model, id and bf16 instruction sets from /proc/cpuinfo, and the commit."""

from __future__ import annotations

import subprocess
from pathlib import Path

from imbloss.runs.environment import bf16_isa, code_commit, cpu_id, cpu_model, run_environment

XEON = """processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 143
model name\t: Intel(R) Xeon(R) Platinum 8480+
stepping\t: 8
flags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_bf16 amx_tile

processor\t: 1
model name\t: another CPU
"""
ZEN2 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 23
model\t\t: 49
model name\t: AMD EPYC 7742 64-Core Processor
stepping\t: 0
flags\t\t: fpu sse2 avx2
"""
ARM = """processor\t: 0
Features\t: fp asimd bf16 i8mm
CPU implementer\t: 0x41
"""


def test_cpu_model_id_and_bf16_from_cpuinfo() -> None:
    assert cpu_model(XEON) == "Intel(R) Xeon(R) Platinum 8480+"  # the first processor's
    assert cpu_id(XEON) == "GenuineIntel 6/143/8"
    assert bf16_isa(XEON) == ["avx512_bf16", "amx_bf16"]
    assert bf16_isa(ZEN2) == [] and cpu_id(ZEN2) == "AuthenticAMD 23/49/0"
    assert bf16_isa(ARM) == ["bf16"] and cpu_id(ARM) is None


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def test_commit_names_the_code_and_marks_a_dirty_tree(tmp_path: Path) -> None:
    assert code_commit.__wrapped__(str(tmp_path)) is None  # not a checkout
    _git(tmp_path, "init", "-q")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.py").write_text("x = 1\n")
    (tmp_path / "notes.md").write_text("n\n")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    sha = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True
    ).stdout.strip()
    assert code_commit.__wrapped__(str(tmp_path)) == sha
    (tmp_path / "notes.md").write_text("changed, but no code\n")
    assert code_commit.__wrapped__(str(tmp_path)) == sha
    (tmp_path / "src" / "a.py").write_text("x = 2\n")
    assert code_commit.__wrapped__(str(tmp_path)) == f"{sha}-dirty"


def test_run_environment_on_this_machine() -> None:
    env = run_environment("cpu")
    assert env["device"] == cpu_model() and env["bf16_isa"] == bf16_isa()
    assert env["threads"] >= 1 and env["torch"] and env["lightning"]
