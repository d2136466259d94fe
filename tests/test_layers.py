"""The layers (docs/architecture.md): mpisim.core imports neither mpi4py nor anything above it; the MPI
layer imports only the core; analysis imports only the core and the file format; mpisim never imports
analysis. Every import statement counts, including those inside functions."""
import ast
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[1]


def imports_of(path):
    """Absolute names of every module imported anywhere in the file at ``path``."""
    package = ".".join(path.relative_to(TOP).with_suffix("").parts[:-1])
    if path.name == "__init__.py":
        package = ".".join(path.relative_to(TOP).parts[:-1])
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module
            names.add(mod)
            names.update(f"{mod}.{a.name}" for a in node.names)   # `from pkg import module`
    return names


def files(package):
    return sorted((TOP / package).rglob("*.py"))


def offenders(package, allowed, forbidden=()):
    """(file, name) of every import of an mpisim/analysis module outside ``allowed`` prefixes, or of a
    ``forbidden`` module."""
    bad = []
    for path in files(package):
        for name in imports_of(path):
            top = name.split(".")[0]
            if top in ("mpisim", "analysis") and not name.startswith(allowed):
                # `from mpisim.core import x` names mpisim.core.x: a module or an attribute, both fine
                bad.append((str(path.relative_to(TOP)), name))
            elif top in forbidden:
                bad.append((str(path.relative_to(TOP)), name))
    return bad


def test_the_walk_sees_relative_and_nested_imports(tmp_path, monkeypatch):
    """The checker itself: a nested relative import of the MPI layer from the core is caught."""
    import sys
    monkeypatch.setattr(sys.modules[__name__], "TOP", tmp_path)
    core = tmp_path / "mpisim" / "core"
    core.mkdir(parents=True)
    (core / "bad.py").write_text("def f():\n    from ..parallel import comm\n    import mpi4py\n")
    found = offenders("mpisim/core", ("mpisim.core",), ("mpi4py",))
    assert ("mpisim/core/bad.py", "mpisim.parallel") in found
    assert ("mpisim/core/bad.py", "mpi4py") in found


@pytest.mark.parametrize("package, allowed, forbidden", [
    ("mpisim/core", ("mpisim.core",), ("mpi4py", "h5py")),
    ("mpisim/parallel", ("mpisim.core", "mpisim.parallel"), ()),
    ("analysis", ("analysis", "mpisim.core", "mpisim.io"), ("mpi4py",)),   # mpisim.io: the format reader
])
def test_layer_imports_nothing_above_it(package, allowed, forbidden):
    assert offenders(package, allowed, forbidden) == []


def test_mpisim_never_imports_analysis():
    bad = {(str(p.relative_to(TOP)), n) for p in files("mpisim") for n in imports_of(p)
           if n.split(".")[0] == "analysis"}
    assert bad == set()
