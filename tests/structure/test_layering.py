"""The layers point one way, read from the source: engine <- service, engine <- training,
the `xnornet` dispatcher above them, the benchmarks beside the product; no import circles.

Function-level (lazy) imports count as much as module-level ones. The checker is tested on a
small tree of its own first, so that a rule it stops seeing fails here too.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

from . import imports

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("engine", "service", "training", "xnornet")
PACKAGES = (*PRODUCT, "benchmarks")
# package -> the other packages it may import
ALLOWED: dict[str, set[str]] = {
    "engine": set(),
    "service": {"engine"},
    "training": {"engine"},
    "xnornet": {"engine", "service", "training"},
    "benchmarks": {"engine", "service", "training"},
}


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def test_the_checker_sees_lazy_relative_and_circular_imports(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "engine/__init__.py": "from .model import Model\n",
            "engine/model.py": "from ._ext import lib\nclass Model: ...\n",
            "engine/bench.py": "def run():\n    from training.speed import bench\n",
            "service/__init__.py": "",
            "service/app.py": (
                "from typing import TYPE_CHECKING\nfrom engine import Model\n"
                "if TYPE_CHECKING:\n    from benchmarks import hooks\n"
            ),
            "training/__init__.py": "",
            "training/speed.py": "from engine.bench import run\n",
            "benchmarks/__init__.py": "",
            "benchmarks/hooks.py": "import service.app\n",
        },
    )
    edges = imports.graph(tmp_path, ["engine", "service", "training", "benchmarks"])
    assert edges["engine"] == {"engine.model": 1}  # engine._ext (compiled) is outside the graph
    assert edges["engine.model"] == {}
    assert edges["engine.bench"] == {"training.speed": 2}  # inside a function
    assert edges["service.app"] == {"engine": 2}  # the TYPE_CHECKING import never runs
    assert edges["benchmarks.hooks"] == {"service.app": 1}
    assert imports.cycles(edges) == [["engine.bench", "training.speed"]]
    bad = imports.forbidden(edges, ALLOWED)
    assert bad == ["engine.bench (line 2) imports training.speed: engine may not import training"]


def test_no_import_circles() -> None:
    edges = imports.graph(ROOT, PACKAGES)
    assert len(edges) > 40 and edges["service.app"], "the packages were not read"
    assert imports.cycles(edges) == []


def test_layers_point_one_way() -> None:
    assert imports.forbidden(imports.graph(ROOT, PACKAGES), ALLOWED) == []


def test_no_product_module_names_a_benchmark_module() -> None:
    """Not even as a string for importlib: the benchmarks plug in through entry points."""
    found = []
    for module, path in imports.modules(ROOT, PRODUCT).items():
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                continue
            if node.value.split(".")[0] == "benchmarks":
                found.append(f"{module}:{node.lineno} {node.value!r}")
    assert found == []
