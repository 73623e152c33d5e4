"""What the product distribution ships: the wheel's Python files hold no benchmark code.

setuptools' build_py stage is what fills the wheel with the packages' files (the C engine is
compiled afterwards, in build_ext); running only that stage keeps this test fast. The benchmarks
are their own distribution (benchmarks/pyproject.toml) and add their commands through the
`xnornet.commands` entry points, which the product never declares itself.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCHMARK_WORDS = ("bench", "loadtest", "loadgen", "httpload", "wrkload", "speed", "architectures", "sweep")


def test_wheel_holds_the_product_and_no_benchmark(tmp_path: Path) -> None:
    out = tmp_path / "lib"
    subprocess.run(
        [sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert {"engine/model.py", "service/app.py", "training/export.py", "xnornet/cli.py"} <= set(files)
    assert {f.split("/")[0] for f in files} == {"engine", "service", "training", "xnornet"}
    assert [f for f in files if any(word in f.rsplit("/", 1)[-1] for word in BENCHMARK_WORDS)] == []


def test_only_the_benchmarks_declare_benchmark_commands() -> None:
    product = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "xnornet.commands" not in product["project"].get("entry-points", {})
    bench = tomllib.loads((ROOT / "benchmarks" / "pyproject.toml").read_text())
    assert bench["project"]["name"] == "xnornet-benchmarks"
    commands = bench["project"]["entry-points"]["xnornet.commands"]
    assert set(commands) == {"bench", "loadtest"}
    assert all(value.startswith("benchmarks.") for value in commands.values())
