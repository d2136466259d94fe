"""One home per file-format path (issue 13 item 5, docs/architecture.md): the HDF5 paths of the output
file and of checkpoints (/particles/..., /observables/..., /parameters/..., /h5md, /structure_factor,
the checkpoint's /state) and the H5MD names below a group (the elements position, image, box, radius, ...,
an element's step, time and value, the box's dimension and boundary attributes) are spelled out only in
mpisim/io/format.py; everything else names them through its constants and readers. The check reads every
string of the code (docstrings excepted): a path literal or element name that comes back anywhere else
fails here."""
import ast
import re
import textwrap
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[1]
HOME = "mpisim/io/format.py"
#: the root groups of the output file and of a checkpoint file
ROOTS = ("particles", "observables", "parameters", "h5md", "structure_factor", "state")
#: a path below one of them inside any string: "particles/all", "/observables/activity", f"state/{x}"
PATH = re.compile(rf"(?<![\w.\-])/?(?:{'|'.join(ROOTS)})/(?:\w|{{)")
#: calls whose string argument names a group or dataset of an open file
KEY_CALLS = {"create_group", "require_group", "create_dataset", "require_dataset", "move", "get", "visit"}

#: H5MD elements of a particles group (the H5MD 1.1 names, mpisim's radius, the box's edges)
ELEMENTS = ("position", "image", "box", "edges", "id", "radius", "species", "velocity", "force", "mass",
            "charge")
#: the datasets of a time-dependent element
MEMBERS = ("step", "time", "value")
#: attributes of the H5MD groups mpisim writes (box, /h5md and its author and creator, /parameters)
ATTRIBUTES = ("dimension", "boundary", "version", "author", "creator", "config_toml")
#: names that mean an H5MD element or attribute wherever they are a key; the others ("box", "id",
#: "step", ...) are common dictionary keys too and count only where the key is certainly HDF5's: a
#: ``create_*`` call, an ``.attrs`` key, or a group or dataset of an open file (see ``_hdf5_names``)
DISTINCT = {"position", "image", "edges", "radius", "species", "velocity", "force", "dimension", "boundary",
            "config_toml"}
H5_NAMES = set(ELEMENTS) | set(MEMBERS) | set(ATTRIBUTES)
#: an element path below a group ("position/value", "box/edges") or after a formatted group
#: (f"{fmt.POSITION}/value")
ELEMENT_PATH = re.compile(rf"(?:(?<![\w.\-/{{}}])(?:{'|'.join(ELEMENTS)})|\{{\}})/(?:{'|'.join(ELEMENTS + MEMBERS)})\b")
#: calls that create a named HDF5 object
CREATE_CALLS = {"create_group", "require_group", "create_dataset", "require_dataset", "create_virtual_dataset"}


def _docstrings(tree):
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def _strings(tree):
    """(line, text) of every string of a module but its docstrings; an f-string's text has "{}" for each
    formatted value (an f-string's parts are Constants as well: callers report a line once)."""
    skip = _docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            yield node.lineno, node.value
        elif isinstance(node, ast.JoinedStr):
            yield node.lineno, "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)


def _is_root_key(node):
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.strip("/") in ROOTS


def _format_refs(tree):
    """(module aliases, imported names) of mpisim/io/format.py in a module: ``from mpisim.io import format as
    fmt``, ``from . import format as fmt``, ``from .format import POSITION``."""
    modules, names = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if module == "format" or module.endswith(".format"):
                names |= {a.asname or a.name for a in node.names}
            else:
                modules |= {a.asname or a.name for a in node.names if a.name == "format"}
        elif isinstance(node, ast.Import):
            modules |= {a.asname for a in node.names if a.name.endswith("io.format") and a.asname}
    return modules, names


class _Hdf5:
    """Which expressions of a module are certainly an open HDF5 file, group or dataset: ``h5py.File(...)``,
    a ``create_*`` call, a subscript by a format-module name (``f[fmt.PARTICLES]``), a subscript of one of
    these, and the names bound to them in the module (assignment, ``with ... as``, ``for k, g in x.items()``
    over one of them or over a dictionary of them)."""

    def __init__(self, tree):
        self.modules, self.names = _format_refs(tree)
        self.bound, self.dicts = set(), set()
        for _ in range(3):                      # names bound to names bound to ...
            for node in ast.walk(tree):
                if isinstance(node, ast.Assign) and self(node.value):
                    self.bound |= {t.id for t in node.targets if isinstance(t, ast.Name)}
                elif isinstance(node, ast.Assign) and isinstance(node.value, ast.DictComp) and self(node.value.value):
                    self.dicts |= {t.id for t in node.targets if isinstance(t, ast.Name)}
                elif isinstance(node, ast.withitem) and isinstance(node.optional_vars, ast.Name) and \
                        self(node.context_expr):
                    self.bound.add(node.optional_vars.id)
                elif isinstance(node, (ast.For, ast.comprehension)) and isinstance(node.iter, ast.Call) and \
                        isinstance(node.iter.func, ast.Attribute) and node.iter.func.attr in ("items", "values") \
                        and (self(node.iter.func.value) or isinstance(node.iter.func.value, ast.Name)
                             and node.iter.func.value.id in self.dicts):
                    target = node.target.elts[-1] if isinstance(node.target, ast.Tuple) else node.target
                    if isinstance(target, ast.Name):
                        self.bound.add(target.id)

    def names_format(self, expr):
        return any(isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in self.modules
                   or isinstance(n, ast.Name) and n.id in self.names for n in ast.walk(expr))

    def __call__(self, expr):
        if isinstance(expr, ast.Name):
            return expr.id in self.bound
        if isinstance(expr, ast.Subscript):
            return self(expr.value) or self.names_format(expr.slice)
        if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute):
            f = expr.func
            return f.attr in CREATE_CALLS or f.attr in ("File", "Group") and isinstance(f.value, ast.Name) \
                and f.value.id == "h5py"
        return False


def _is_attrs(expr):
    return isinstance(expr, ast.Attribute) and expr.attr == "attrs"


def _h5_key(node):
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) and \
        node.value in H5_NAMES else None


def element_names(source):
    """(line, text) of every H5MD name below a group spelled out in Python ``source``: an element path
    ("position/value", "box/edges", f"{fmt.POSITION}/value"), or an element, element member or attribute
    name used as a key: always for the distinct names (``part["radius"]``, ``"species" in part``,
    ``x.attrs["dimension"]``), and for "box", "id", "step", "time", "value", ... where the container is
    certainly HDF5 (``g.create_group("box")``, ``g.attrs["version"]``, ``f[fmt.PARTICLES]["id"]``,
    ``g = f[fmt.observable_path(name)]; g["step"]``). Docstrings do not count."""
    tree = ast.parse(source)
    hdf5 = _Hdf5(tree)

    def container(key, obj):
        return key is not None and (key in DISTINCT or _is_attrs(obj) or hdf5(obj))

    found = [(line, text) for line, text in _strings(tree) if ELEMENT_PATH.search(text)]
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and container(_h5_key(node.slice), node.value):
            found.append((node.lineno, node.slice.value))
        elif isinstance(node, ast.Compare) and len(node.comparators) == 1 and \
                isinstance(node.ops[0], (ast.In, ast.NotIn)) and container(_h5_key(node.left), node.comparators[0]):
            found.append((node.lineno, node.left.value))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
            key, obj = _h5_key(node.args[0]), node.func.value
            if key and (node.func.attr in CREATE_CALLS or
                        node.func.attr in ("get", "create", "modify") and container(key, obj)):
                found.append((node.lineno, key))
    return found


def path_literals(source):
    """(line, text) of every file-format path spelled out in Python ``source``: a string (or f-string part)
    holding a path below a root group, or a bare root group's name used as a key (``f["parameters"]``,
    ``"observables" in f``, ``f.create_group("h5md")``), and every H5MD name below a group
    (:func:`element_names`). Docstrings do not count."""
    tree = ast.parse(source)
    found = [(line, text) for line, text in _strings(tree) if PATH.search(text)]
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and _is_root_key(node.slice):
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
    found += element_names(source)
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
    ok = ("docs/sweeps.md", "run.state/x", "parameters", {"state": 1})
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


#: a module's head for the snippets below: the format module as the code imports it
HEAD = "import h5py\nfrom mpisim.io import format as fmt\nfrom mpisim.io.format import PARTICLES\n"


@pytest.mark.parametrize("snippet", [
    'n = part["position/value"].shape[1]',
    'e = part["box/edges/value"][()]',
    'x = f[f"{fmt.POSITION}/value"][0]',
    'src = h5py.VirtualSource(path, f"{fmt.IMAGE}/step", shape=(1,))',
    'r = part["radius"][()]',
    's = part["species"][()] if "species" in part else None',
    'box.attrs["dimension"] = 3',
    'ok = "boundary" in g.attrs',
    'v = h.attrs.get("version")',
    'position = traj.create_group("position")',
    'g.create_virtual_dataset("value", layout)',
    'e = box.create_group("edges")',
    'g = f[fmt.observable_path(name)]\nrows = g["step"].shape[0]',
    'with h5py.File(path) as h:\n    ids = h[PARTICLES]["id"][:]',
    'box = h5py.File(path)[fmt.PARTICLES]["box"]',
    'for name, g in f[fmt.OBSERVABLES].items():\n    t = g["time"][()]',
    'series = {n: f[fmt.observable_path(n)] for n in names}\nfor n, g in series.items():\n    s = g["value"]',
])
def test_the_checker_finds_element_names_below_a_group(snippet):
    """Each planted element name is reported, on its line."""
    source = HEAD + snippet + "\n"
    found = path_literals(source)
    assert [line for line, _ in found] == [HEAD.count("\n") + snippet.count("\n") + 1], found


def test_the_checker_leaves_dictionary_keys_and_docstrings_alone():
    source = HEAD + textwrap.dedent('''
        def restart(meta, obs, config, done, total):
            """Reads part["radius"] and "position/value" (a docstring: fine)."""
            box = meta["box"] if "box" in meta else config.box
            steps, t = obs["step"], obs.get("time")
            rows = {"radius": 0.5, "position": (0, 0), "id": 3, "step": 10}
            return f"{done}/{total} steps, see docs/position.md", config.position, rows["step"]
        ''')
    assert path_literals(source) == []


@pytest.mark.parametrize("real, planted", [
    ("fmt.read_radius(f)", 'f[fmt.PARTICLES]["radius"][()]'),
    ("fmt.read_images(f, fr)", 'f[fmt.IMAGE]["value"][fr]'),
    ("fmt.write_view_layout(v, source, steps, edges, n, dim)", 'v.create_group("position")'),
])
def test_the_checker_fails_on_a_violation_planted_in_real_code(real, planted):
    """mpisim/io/viewers.py passes as it is and fails with one read written by hand again."""
    source = (TOP / "mpisim/io/viewers.py").read_text()
    assert real in source and path_literals(source) == []
    line = source[:source.index(real)].count("\n") + 1
    assert [n for n, _ in path_literals(source.replace(real, planted, 1))] == [line]


def test_no_format_path_outside_the_format_module():
    py, shell = code_files()
    bad = [f"{p.relative_to(TOP)}:{line}: {text!r}" for p in py for line, text in path_literals(p.read_text())]
    bad += [f"{p.relative_to(TOP)}:{line}: {text}" for p in shell for line, text in shell_path_literals(p.read_text())]
    assert not bad, "file-format paths spelled out outside mpisim/io/format.py:\n" + "\n".join(bad)
