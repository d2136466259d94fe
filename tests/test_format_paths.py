"""One home per file-format path (issue 13 item 5, docs/architecture.md): the HDF5 paths of the output
file and of checkpoints (/particles/..., /observables/..., /parameters/..., /h5md, /structure_factor,
the checkpoint's /state) are spelled out only in mpisim/io/format.py; everything else names them through
its constants and readers. The check reads every string of the code (docstrings excepted): a path
literal that comes back anywhere else fails here."""
import ast
import re
from pathlib import Path

TOP = Path(__file__).resolve().parents[1]
HOME = "mpisim/io/format.py"
#: the root groups of the output file and of a checkpoint file
ROOTS = ("particles", "observables", "parameters", "h5md", "structure_factor", "state")
#: a path below one of them inside any string: "particles/all", "/observables/activity", f"state/{x}"
PATH = re.compile(rf"(?<![\w.\-])/?(?:{'|'.join(ROOTS)})/(?:\w|{{)")
#: calls whose string argument names a group or dataset of an open file
KEY_CALLS = {"create_group", "require_group", "create_dataset", "require_dataset", "move", "get", "visit"}


def _docstrings(tree):
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def _is_root_key(node):
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.strip("/") in ROOTS


def path_literals(source):
    """(line, text) of every file-format path spelled out in Python ``source``: a string (or f-string part)
    holding a path below a root group, or a bare root group's name used as a key (``f["parameters"]``,
    ``"observables" in f``, ``f.create_group("h5md")``). Docstrings do not count."""
    tree = ast.parse(source)
    skip = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            if PATH.search(node.value):
                found.append((node.lineno, node.value))
        elif isinstance(node, ast.JoinedStr):
            text = "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
            if PATH.search(text):
                found.append((node.lineno, text))
        elif isinstance(node, ast.Subscript) and _is_root_key(node.slice):
            found.append((node.lineno, node.slice.value))
        elif isinstance(node, ast.Compare) and _is_root_key(node.left) and \
                any(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops):
            found.append((node.lineno, node.left.value))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in KEY_CALLS:
            found += [(node.lineno, a.value) for a in node.args[:1] if _is_root_key(a)]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr in ("startswith", "endswith") and node.args:
            arg = node.args[0]
            keys = arg.elts if isinstance(arg, ast.Tuple) else [arg]
            found += [(node.lineno, k.value) for k in keys if _is_root_key(k)]
    # an f-string's parts are also Constants: report each line once
    return sorted({line: text for line, text in sorted(found, reverse=True)}.items())


def shell_path_literals(text):
    """(line, text) of file-format paths in a shell script: the Python of its here-documents is checked as
    Python (``path_literals``), the rest for quoted paths below a root group."""
    found, doc = [], None
    lines = text.splitlines()
    for i, line in enumerate(lines, 1):
        if doc is not None:
            if line.strip() == doc[0]:
                try:
                    found += [(doc[1] + n, t) for n, t in path_literals("\n".join(doc[2]))]
                except SyntaxError:         # not Python: quoted paths only
                    found += [(doc[1] + n, t) for n, t in enumerate(doc[2], 1) if PATH.search(t)]
                doc = None
            else:
                doc[2].append(line)
            continue
        here = re.search(r"<<-?\s*['\"]?(\w+)['\"]?", line)
        if here:
            doc = (here.group(1), i, [])
        found += [(i, m.group(0)) for m in re.finditer(r"""["'][^"'\n]*["']""", line) if PATH.search(m.group(0))]
    return found


def code_files():
    py = [p for pkg in ("mpisim", "analysis", "studies", "launch", "examples") for p in sorted((TOP / pkg).rglob("*.py"))]
    shell = [p for p in sorted((TOP / "launch").iterdir()) if p.is_file() and p.suffix == "" or p.suffix == ".sh"]
    return [p for p in py if p.relative_to(TOP).as_posix() != HOME], shell


def test_the_checker_finds_paths_and_ignores_docstrings():
    source = '''
"""Reads /particles/all/position (a docstring: fine)."""
def f(h5, name, g):
    """/observables/activity is fine here too."""
    a = h5["particles/all/position/value"]
    b = h5[f"observables/{name}/step"]
    c = "parameters" in h5
    d = h5["h5md"]
    g.create_group("state")
    e = h5["/structure_factor/value"]
    msg = f"no /particles/all in {name}"
    keep = name.startswith(("observables", "x"))
    ok = ("docs/sweeps.md", "run.state/x", "position/value", "parameters", h5["radius"], {"state": 1})
'''
    found = path_literals(source)
    assert [line for line, _ in found] == [5, 6, 7, 8, 9, 10, 11, 12], found
    script = '''echo "/observables/msd"
"$py" - <<'PY'
cfg = {"structure_factor": {"bins": 4}}
n.startswith(("particles", PARTICLES))
PY
echo 'docs/x' "parameters"'''
    assert shell_path_literals(script) == [(1, '"/observables/msd"'), (4, "particles")]


def test_no_format_path_outside_the_format_module():
    py, shell = code_files()
    bad = [f"{p.relative_to(TOP)}:{line}: {text!r}" for p in py for line, text in path_literals(p.read_text())]
    bad += [f"{p.relative_to(TOP)}:{line}: {text}" for p in shell for line, text in shell_path_literals(p.read_text())]
    assert not bad, "file-format paths spelled out outside mpisim/io/format.py:\n" + "\n".join(bad)
