"""Compiles and runs the C kernel test harness (tests/c/test_kernels.c).

The harness checks every ISA the CPU has against the scalar kernels (bit-identical for
bconv / pack, 1e-4 relative for fconv, canaries outside the computed ranges) and the
scalar kernels against naive formulas. It builds from the kernel sources alone, so it does
not depend on the rest of the engine.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
KERNELS = sorted((ROOT / "engine" / "src" / "kernels").glob("*.c"))
HARNESS = ROOT / "tests" / "c" / "test_kernels.c"
CFLAGS = ["-O2", "-std=c11", "-ffp-contract=off", "-pthread", "-Wall", "-Wextra", "-Wno-unused-parameter"]


def _cc() -> str:
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.skip("no C compiler on PATH (cc / gcc / clang); cannot build the C kernel tests")
    return cc


def _build(tmp_path: pathlib.Path, extra: list[str]) -> pathlib.Path:
    exe = tmp_path / "test_kernels"
    cmd = [
        _cc(),
        *CFLAGS,
        *extra,
        f"-I{ROOT / 'engine' / 'include'}",
        *map(str, KERNELS),
        str(HARNESS),
        "-o",
        str(exe),
        "-lm",
    ]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, f"compile failed:\n{' '.join(cmd)}\n{r.stderr}"
    return exe


def _run(exe: pathlib.Path, *args: str, env: dict | None = None) -> None:
    r = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=600, env=env)
    out = r.stdout + r.stderr
    assert r.returncode == 0, f"C kernel tests failed (exit {r.returncode}):\n{out[-8000:]}"
    assert "OK" in r.stdout, out[-8000:]


def test_kernels_c(tmp_path):
    exe = _build(tmp_path, [])
    for seed in ("1", "12345"):
        _run(exe, seed)


def _sanitizers_work(cc: str, tmp_path: pathlib.Path) -> bool:
    src = tmp_path / "probe.c"
    src.write_text("int main(void) { return 0; }\n")
    r = subprocess.run(
        [cc, "-fsanitize=address,undefined", str(src), "-o", str(tmp_path / "probe")],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        return False
    return subprocess.run([str(tmp_path / "probe")], capture_output=True).returncode == 0


def test_kernels_c_sanitized(tmp_path):
    cc = _cc()
    if not _sanitizers_work(cc, tmp_path):
        pytest.skip(f"{cc} cannot build/run -fsanitize=address,undefined programs here")
    exe = _build(
        tmp_path,
        ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer", "-g"],
    )
    env = dict(
        os.environ,
        ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
        UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1",
    )
    _run(exe, "7", env=env)
