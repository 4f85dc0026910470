"""The package tree is the architecture: csfair/ is framework-free and its imports run downward.

Layers, top to bottom (csfair issue 12): ``cli`` -> ``pretraining``, ``baselines`` -> ``lexicons``,
``evaluation`` -> ``text`` -> ``io``, ``paths`` (and the package root, which holds the version).
A module may import its own sub-package and any lower layer, never a higher or a sibling one.
"""
import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import csfair

ROOT = Path(csfair.__file__).resolve().parent
LAYER = {"cli": 4, "experiments": 4, "pretraining": 3, "baselines": 3, "lexicons": 2, "evaluation": 2, "text": 1,
         "io": 0, "paths": 0, "locks": 0, "": 0}


def modules():
    return sorted(m.name for m in pkgutil.walk_packages([str(ROOT)], prefix="csfair."))


def part(module: str) -> str:
    """``csfair.pretraining.sampler`` -> ``pretraining``; ``csfair`` -> ``""``."""
    bits = module.split(".")
    return bits[1] if len(bits) > 1 else ""


def csfair_imports(path: Path):
    """Absolute csfair modules imported by a file (every import statement, also inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import (use csfair.<package>.<module>)"
            if node.module and node.module.split(".")[0] == "csfair":
                yield node.module
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "csfair":
                    yield alias.name


def test_every_module_imports_without_fairseq_or_transformers():
    names = modules()
    assert {"csfair.pretraining.sampler", "csfair.lexicons.ibm1", "csfair.evaluation.tasks",
            "csfair.baselines.embeddings", "csfair.cli.prep"} <= set(names)
    code = ("import importlib, sys\n"
            f"for name in {names!r}:\n    importlib.import_module(name)\n"
            "bad = sorted({m.split('.')[0] for m in sys.modules} & {'fairseq', 'transformers'})\n"
            "assert not bad, f'csfair imported {bad}'\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-3000:]


def test_imports_run_downward_only():
    wrong = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        me = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        for target in csfair_imports(path):
            a, b = part(me), part(target)
            if a == b or b == "":
                continue
            if LAYER[b] >= LAYER[a]:
                wrong.append(f"{me} imports {target}")
    assert not wrong, wrong


def test_each_sub_package_says_what_lives_there():
    for pkg in ("pretraining", "lexicons", "evaluation", "baselines", "cli"):
        doc = ast.get_docstring(ast.parse((ROOT / pkg / "__init__.py").read_text(encoding="utf-8")))
        assert doc and "import" in doc, pkg
