"""The package tree is the architecture, and every import in it is checked (csfair issues 12 and 22).

Each rule reads the AST of every file, so an import inside a function body, an
``importlib.import_module("...")`` with a literal name and a script loaded by its path are seen too:

* ``csfair/`` (the method) reaches no framework and nothing above it: no ``fairseq``, ``fairseq_cli``,
  ``transformers``, ``torch``, ``csfair_hf``, ``user_dir``, ``csfair_cli``, script or benchmark;
* inside ``csfair/``, imports are absolute and run downward: ``pretraining``, ``baselines`` ->
  ``lexicons``, ``evaluation`` -> ``text`` -> ``io``, ``paths``, ``locks`` (and the package root, which
  holds the version); a module imports its own sub-package and lower layers, never a sibling;
* ``csfair_cli/`` (the commands, beside ``csfair/`` as ``fairseq_cli/`` beside ``fairseq/``) imports no
  ``fairseq``, ``user_dir`` or ``torch``: ``csfair`` and, inside the command that needs it, ``csfair_hf``;
* ``csfair_hf/`` (transformers glue) imports no ``fairseq``, ``fairseq_cli``, ``user_dir`` or ``csfair_cli``;
* ``user_dir/`` (fairseq glue) imports no ``csfair_hf`` or ``csfair_cli``, and ``transformers`` only in
  ``user_dir/hf_interop.py``: the fairseq <-> transformers checkpoint converter needs both frameworks by
  definition (like transformers' own ``convert_roberta_original_pytorch_checkpoint_to_pytorch``, which
  imports fairseq), and it converts fairseq checkpoints, so it lives with the fairseq glue;
* no package (``csfair``, ``csfair_cli``, ``csfair_hf``, ``user_dir``) imports or loads a script
  (``scripts/``) or a benchmark (``bench/``); scripts import other scripts only where listed in
  :data:`SCRIPT_TO_SCRIPT` (the orchestration that csfair issue 22, section 2, moves into the library).
"""
import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import csfair

ROOT = Path(csfair.__file__).resolve().parent
REPO = ROOT.parent
LAYER = {"experiments": 4, "pretraining": 3, "baselines": 3, "lexicons": 2, "evaluation": 2, "text": 1,
         "io": 0, "paths": 0, "locks": 0, "": 0}
PACKAGES = ("csfair", "csfair_cli", "csfair_hf", "user_dir")
SCRIPTS = {p.stem for p in (REPO / "scripts").glob("*.py")}
BENCHES = {p.stem for p in (REPO / "bench").rglob("*.py")}
#: what each package may not import (top-level names; scripts and benchmarks are checked for all)
FORBIDDEN = {
    "csfair": {"fairseq", "fairseq_cli", "transformers", "torch", "csfair_hf", "user_dir", "csfair_cli"},
    "csfair_cli": {"fairseq", "fairseq_cli", "user_dir", "torch"},
    "csfair_hf": {"fairseq", "fairseq_cli", "user_dir", "csfair_cli"},
    "user_dir": {"csfair_hf", "csfair_cli", "transformers"},
}
#: the documented exceptions: (file, imported top-level name) -> why
ALLOWED = {
    ("user_dir/hf_interop.py", "transformers"): "the fairseq <-> transformers checkpoint converter",
    ("user_dir/hf_convert.py", "csfair_hf"): "the converter's front end writes the model card (csfair_hf.model_card)",
}
#: scripts that import another script (csfair issue 22, section 2 removed the last ones; none may be added)
SCRIPT_TO_SCRIPT = set()


def _module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    return ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)


def _strings(node):
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def imports_of(source: str, module: str = "", is_package: bool = False):
    """Every module a file imports: ``(lineno, absolute name)`` for each import statement anywhere in the
    file (function bodies included; relative imports resolved against ``module``), each
    ``importlib.import_module``/``__import__`` call with a literal name, and ``("path:<arg>")`` for
    each ``spec_from_file_location``/``runpy.run_path``/``sys.path`` change whose arguments name
    ``scripts`` or ``bench``."""
    tree = ast.parse(source)
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module
            yield node.lineno, name
            if node.module is None or node.level:  # "from . import x": x is a module too
                for alias in node.names:
                    yield node.lineno, f"{name}.{alias.name}"
        elif isinstance(node, ast.Call):
            f = node.func
            fname = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            if fname in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
                yield node.lineno, str(node.args[0].value)
            elif fname in ("spec_from_file_location", "run_path") or (
                    fname in ("insert", "append") and isinstance(f, ast.Attribute)
                    and isinstance(f.value, ast.Attribute) and f.value.attr == "path"):
                for s in _strings(node):
                    bits = set(s.replace("\\", "/").split("/"))
                    if bits & {"scripts", "bench"}:
                        yield node.lineno, f"path:{s}"


def files(package: str):
    return sorted((REPO / package).rglob("*.py"))


def all_imports(package: str):
    for path in files(package):
        rel = path.relative_to(REPO).as_posix()
        for lineno, name in imports_of(path.read_text(encoding="utf-8"), _module_name(path),
                                       path.name == "__init__.py"):
            yield rel, lineno, name


def test_the_import_reader_sees_function_bodies_dynamic_imports_and_script_paths():
    src = ("import os\n"
           "def f():\n    from csfair_hf.tokenization import load\n    import fairseq.models as m\n"
           "class C:\n    def g(self):\n        importlib.import_module('transformers')\n"
           "spec = util.spec_from_file_location('z', ROOT / 'scripts' / 'zeroshot.py')\n"
           "sys.path.insert(0, os.path.join(ROOT, 'bench'))\n"
           "from . import sibling\nfrom ..io import atomic_write\n")
    got = {name for _, name in imports_of(src, "csfair.evaluation.x")}
    assert {"os", "csfair_hf.tokenization", "fairseq.models", "transformers", "path:scripts", "path:bench",
            "csfair.evaluation.sibling", "csfair.io"} <= got


@pytest.mark.parametrize("package", PACKAGES)
def test_packages_import_no_framework_or_layer_they_must_not_reach(package):
    wrong = []
    for rel, lineno, name in all_imports(package):
        top = name.split(".")[0]
        if name.startswith("path:"):
            wrong.append(f"{rel}:{lineno} loads {name[5:]} (a script or benchmark)")
        elif top in FORBIDDEN[package] and (rel, top) not in ALLOWED:
            wrong.append(f"{rel}:{lineno} imports {name}")
        elif top in SCRIPTS | BENCHES | {"scripts", "bench"}:
            wrong.append(f"{rel}:{lineno} imports {name} (a script or benchmark)")
    assert not wrong, "\n".join(wrong)
    for (rel, top), why in ALLOWED.items():  # each exception is still needed, else it goes
        if rel.startswith(package + "/"):
            assert any(r == rel and n.split(".")[0] == top for r, _, n in all_imports(package)), (rel, top, why)


def test_scripts_import_no_new_script():
    found = set()
    for rel, _, name in all_imports("scripts"):
        if name.split(".")[0] in SCRIPTS:
            found.add((rel, name.split(".")[0]))
    assert found <= SCRIPT_TO_SCRIPT, sorted(found - SCRIPT_TO_SCRIPT)


def test_csfair_and_csfair_cli_import_without_fairseq_transformers_or_torch():
    names = sorted(m.name for m in pkgutil.walk_packages([str(ROOT)], prefix="csfair."))
    names += sorted(m.name for m in pkgutil.walk_packages([str(REPO / "csfair_cli")], prefix="csfair_cli."))
    assert {"csfair.pretraining.sampler", "csfair.lexicons.ibm1", "csfair.evaluation.tasks",
            "csfair.baselines.embeddings", "csfair_cli.prep", "csfair_cli.lexicon"} <= set(names)
    code = ("import importlib, sys\n"
            f"for name in {names!r}:\n    importlib.import_module(name)\n"
            "bad = sorted({m.split('.')[0] for m in sys.modules} & {'fairseq', 'transformers', 'torch', 'user_dir'})\n"
            "assert not bad, f'importing csfair and csfair_cli loaded {bad}'\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert p.returncode == 0, p.stderr[-3000:]


def part(module: str) -> str:
    """``csfair.pretraining.sampler`` -> ``pretraining``; ``csfair`` -> ``""``."""
    bits = module.split(".")
    return bits[1] if len(bits) > 1 else ""


def test_csfair_imports_are_absolute_and_run_downward_only():
    wrong = []
    for path in files("csfair"):
        me = _module_name(path)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level:
                wrong.append(f"{me}: relative import (use csfair.<package>.<module>)")
        for _, target in imports_of(path.read_text(encoding="utf-8"), me, path.name == "__init__.py"):
            if target.split(".")[0] != "csfair":
                continue
            a, b = part(me), part(target)
            assert a in LAYER and b in LAYER, f"{me} or {target}: a sub-package without a layer in LAYER"
            if a == b or b == "":
                continue
            if LAYER[b] >= LAYER[a]:
                wrong.append(f"{me} imports {target}")
    assert not wrong, wrong


def test_each_package_says_what_it_may_import():
    for init in [ROOT / pkg / "__init__.py" for pkg in ("pretraining", "lexicons", "evaluation", "baselines")] + \
            [REPO / pkg / "__init__.py" for pkg in ("csfair_cli", "csfair_hf")]:
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and "import" in doc, init
