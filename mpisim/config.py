"""Run configuration: TOML in, frozen validated dataclasses out.

Every key has a default except system.n, system.phi, dynamics.scheme and the scheme's own required keys
(its step size, ...). Bad input raises ConfigError
with one message naming the key and the allowed values; the CLI turns it into exit status 2 before
anything is written. ``RunConfig.to_toml()`` writes the full resolved configuration (defaults included)
that goes into the output file's /parameters.
"""
import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

from .core.box import BALL_VOLUME, DIMENSIONS
from .core.neighbour_list import PAIR_SEARCHES
from .core.potentials import POTENTIALS
from .core.schemes import (SCHEMES, ParameterError, SchemeParameters, all_parameter_fields,
                           schemes_taking, stored_dynamics)
from .core.sofk import AUTO_DIRECT_MAX_K, NUFFT_TOLERANCE


class ConfigError(ValueError):
    """A configuration that cannot run; the message names the key and what is allowed."""


def _fail(key, message):
    raise ConfigError(f"{key}: {message}")


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@dataclass(frozen=True)
class System:
    """[system]: the particles and the box. Lengths in units of the (mean) diameter."""
    n: int
    phi: float
    dim: int = 3
    radius: float = 0.5
    radii: tuple = ()            # species radii for a polydisperse system ...
    fractions: tuple = ()        # ... and their number fractions (default: equal)
    polydispersity: float = 0.0  # or: radii uniform in radius * [1 - p, 1 + p]
    seed: int = 0                # keys every random draw of the dynamics
    init_seed: int = -1          # keys the random initial positions; -1: use seed
    init: str = "random"         # "random" or the path of an earlier output ...
    init_frame: int = -1         # ... and which of its frames (index; negative from the end, -1 the last)

    def validate(self):
        if not isinstance(self.dim, int) or isinstance(self.dim, bool) or self.dim not in DIMENSIONS:
            _fail("system.dim", f"must be one of {', '.join(map(str, DIMENSIONS))}, got {self.dim!r}")
        if not isinstance(self.n, int) or self.n < 2:
            _fail("system.n", f"must be an integer >= 2, got {self.n!r}")
        if not (0 < self.phi < 2):
            _fail("system.phi", f"packing fraction must be in (0, 2), got {self.phi!r}")
        if not self.radius > 0:
            _fail("system.radius", f"must be > 0, got {self.radius!r}")
        for key in ("radii", "fractions"):
            values = getattr(self, key)
            if any(not _is_number(v) for v in values):
                _fail(f"system.{key}", f"must be a list of numbers, got {list(values)!r}")
        if any(not r > 0 for r in self.radii):
            _fail("system.radii", f"every radius must be > 0, got {list(self.radii)}")
        if self.fractions:
            if len(self.fractions) != len(self.radii):
                _fail("system.fractions", f"needs one fraction per entry of system.radii "
                      f"({len(self.radii)}), got {len(self.fractions)}")
            if any(f < 0 for f in self.fractions) or not math.isclose(sum(self.fractions), 1.0):
                _fail("system.fractions", f"must be >= 0 and sum to 1, got {list(self.fractions)}")
        if not (0 <= self.polydispersity < 1):
            _fail("system.polydispersity", f"must be in [0, 1), got {self.polydispersity!r}")
        if self.polydispersity and self.radii:
            _fail("system.polydispersity", "give either system.radii or system.polydispersity, not both")
        if not isinstance(self.seed, int) or self.seed < 0:
            _fail("system.seed", f"must be an integer >= 0, got {self.seed!r}")
        if not isinstance(self.init_seed, int) or self.init_seed < -1:
            _fail("system.init_seed", f"must be an integer >= 0, or -1 for system.seed; got {self.init_seed!r}")
        if self.init != "random" and not Path(self.init).is_file():
            _fail("system.init", f"must be \"random\" or an existing output file, got {self.init!r}")
        if not isinstance(self.init_frame, int) or isinstance(self.init_frame, bool):
            _fail("system.init_frame", f"must be an integer frame index (-1: the last), got {self.init_frame!r}")
        if self.init == "random" and self.init_frame != -1:
            _fail("system.init_frame", f"chooses a frame of system.init, which is \"random\"; "
                  f"give system.init a file or leave init_frame at -1 (got {self.init_frame!r})")


@dataclass(frozen=True)
class Dynamics:
    """[dynamics]: the scheme, its own parameters and the pair potential.

    ``parameters`` is the scheme's frozen dataclass (``mpisim/core/schemes/<scheme>.py``, ``Parameters``):
    the TOML keys of the section are ``scheme``, ``potential`` and that dataclass's fields; a key of
    another scheme is refused by name. Attribute access falls through to the parameters
    (``config.dynamics.learning_rate``)."""
    scheme: str
    parameters: SchemeParameters = None
    potential: str = "linear"

    @classmethod
    def from_table(cls, table):
        """Build from the [dynamics] table (a dict); ConfigError names the first bad key."""
        own = {f.name: f for f in dataclasses.fields(cls)}
        if "scheme" not in table:
            _fail("dynamics.scheme", "required key is missing")
        scheme = _coerce("dynamics", "scheme", table["scheme"], own["scheme"])
        if scheme not in SCHEMES:
            _fail("dynamics.scheme", f"unknown scheme {scheme!r}; allowed: {', '.join(SCHEMES)}")
        spec = SCHEMES[scheme]
        fields = {f.name: f for f in dataclasses.fields(spec.parameters)}
        allowed = ("scheme", "potential", *fields)
        for key in table:
            if key not in allowed:
                owners = schemes_taking(key)
                belongs = f" (a key of {', '.join(owners)})" if owners else ""
                _fail(f"dynamics.{key}", f"scheme {scheme} does not take {key}{belongs}; allowed: "
                      f"{', '.join(allowed)}")
        missing = [k for k in spec.required if k not in table]
        if missing:
            _fail(f"dynamics.{missing[0]}", f"required key of scheme {scheme} is missing")
        kwargs = {k: _coerce("dynamics", k, v, fields[k]) for k, v in table.items() if k in fields}
        potential = _coerce("dynamics", "potential", table.get("potential", own["potential"].default),
                            own["potential"])
        return cls(scheme=scheme, parameters=spec.parameters(**kwargs), potential=potential)

    def validate(self):
        if self.scheme not in SCHEMES:
            _fail("dynamics.scheme", f"unknown scheme {self.scheme!r}; allowed: {', '.join(SCHEMES)}")
        if self.potential not in POTENTIALS:
            _fail("dynamics.potential", f"unknown potential {self.potential!r}; allowed: "
                  f"{', '.join(POTENTIALS)}")
        if type(self.parameters) is not SCHEMES[self.scheme].parameters:
            raise TypeError(f"Dynamics(scheme={self.scheme!r}) needs parameters of type "
                            f"{SCHEMES[self.scheme].parameters.__qualname__}, got {type(self.parameters)}")
        try:
            self.parameters.validate(self.scheme)
        except ParameterError as exc:
            raise ConfigError(str(exc)) from None

    def to_table(self):
        """{key: value}: scheme, the scheme's parameters (defaults included), potential."""
        return {"scheme": self.scheme, **dataclasses.asdict(self.parameters), "potential": self.potential}

    def __getattr__(self, name):
        # Only reached when normal lookup fails: a parameter of the scheme.
        if name.startswith("__") or name == "parameters":
            raise AttributeError(name)
        try:
            return getattr(self.parameters, name)
        except AttributeError:
            raise AttributeError(f"scheme {self.scheme} has no parameter {name!r}") from None


# run.step_kind: the sparse step visits only the particles that can have changed (docs/performance.md);
# auto switches by activity. Speed only: the trajectory is bitwise the same.
STEP_KINDS = ("auto", "dense", "sparse")


@dataclass(frozen=True)
class Run:
    """[run]: how long, how often to log, checkpoint and report."""
    steps: int = 1000
    log_every: int = 10
    stop_when_absorbed: bool = True
    sort_every: int = 100              # spatial re-sort of particles (memory locality only)
    skin: float = 0.2                  # Verlet-list skin (diameters; speed only, never results)
    step_kind: str = "auto"            # dense, sparse or auto (by activity); speed only, never results
    pair_search: str = "auto"          # verlet, cells or auto (cells at skin 0); speed only, never results
    checkpoint_every: int = 0          # steps; 0 = off
    checkpoint_minutes: float = 0.0    # wall time; 0 = off
    keep_checkpoint: bool = True       # a complete run keeps its last state (mpisim resume --steps carries it on)
    progress_seconds: float = 10.0     # rank 0 prints progress this often; 0 = never
    # Run until steady (docs/configuration.md; the criterion is mpisim/core/steady.py): end the run when
    # the activity's block means over the last steady_tail_fraction of it are flat within their errors,
    # asked every steady_every steps from steady_min_steps on; run.steps is the cap.
    stop_when_steady: bool = False
    steady_every: int = 1000
    steady_min_steps: int = 0
    steady_tail_fraction: float = 0.5
    steady_blocks: int = 4
    steady_sub_blocks: int = 5
    steady_n_sigma: float = 3.0

    def validate(self):
        least = {"log_every": 1, "sort_every": 1, "steady_every": 1, "steady_blocks": 3, "steady_sub_blocks": 2}
        for key in ("steps", "log_every", "sort_every", "checkpoint_every", "steady_every", "steady_min_steps",
                    "steady_blocks", "steady_sub_blocks"):
            v = getattr(self, key)
            if not isinstance(v, int) or v < least.get(key, 0):
                _fail(f"run.{key}", f"must be an integer >= {least.get(key, 0)}, got {v!r}")
        for key in ("checkpoint_minutes", "progress_seconds", "skin"):
            if getattr(self, key) < 0:
                _fail(f"run.{key}", f"must be >= 0, got {getattr(self, key)!r}")
        if not 0.0 < self.steady_tail_fraction <= 1.0:
            _fail("run.steady_tail_fraction", f"must be in (0, 1], got {self.steady_tail_fraction!r}")
        if not self.steady_n_sigma > 0:
            _fail("run.steady_n_sigma", f"must be > 0, got {self.steady_n_sigma!r}")
        if self.step_kind not in STEP_KINDS:
            _fail("run.step_kind", f"unknown step kind {self.step_kind!r}; allowed: {', '.join(STEP_KINDS)}")
        if self.pair_search not in PAIR_SEARCHES:
            _fail("run.pair_search", f"unknown pair search {self.pair_search!r}; allowed: "
                                     f"{', '.join(PAIR_SEARCHES)}")
        if self.pair_search == "cells" and self.step_kind == "sparse":
            _fail("run.pair_search", 'the sparse step needs the Verlet list: "cells" cannot go with '
                                     'run.step_kind = "sparse"')


@dataclass(frozen=True)
class Output:
    """[output]: where and what to write (docs/file-format.md)."""
    path: str = "run.h5"
    snapshot_every: int = 0           # every K steps; 0 = off
    snapshot_per_decade: int = 0      # log-spaced snapshots; 0 = off
    snapshot_steps: tuple = ()        # an explicit list
    flush_every: int = 1000           # observables reach the file at least this often (steps)

    def validate(self):
        if not self.path or not str(self.path).endswith((".h5", ".hdf5", ".h5md")):
            _fail("output.path", f"must name an .h5 file, got {self.path!r}")
        for key in ("snapshot_every", "snapshot_per_decade", "flush_every"):
            v = getattr(self, key)
            if not isinstance(v, int) or v < (1 if key == "flush_every" else 0):
                _fail(f"output.{key}", f"must be an integer >= {1 if key == 'flush_every' else 0}, got {v!r}")
        if any(not isinstance(s, int) or s < 0 for s in self.snapshot_steps):
            _fail("output.snapshot_steps", f"must be a list of integers >= 0, got {list(self.snapshot_steps)}")


@dataclass(frozen=True)
class StructureFactor:
    """[structure_factor]: S(k) measured during the run (docs/structure-factor.md); off by default.

    A flat section (not [observables.structure_factor]) so that --set structure_factor.k_max=... and
    the /parameters attributes work like every other section."""
    every: int = 0                    # measure every K steps; 0 = off
    steps: tuple = ()                 # and/or at these steps
    k_max: float = 0.0                # inverse diameters; 0 = 2 pi 8 / L (eight shells)
    k_min: float = 0.0
    bins: int = 32                    # bins of |k| in [k_min, k_max]
    method: str = "auto"              # "direct" (exact sums), "nufft" (type-1 NUFFT, large k_max), or "auto":
                                      # direct up to AUTO_DIRECT_MAX_K wave vectors, nufft beyond
    tolerance: float = NUFFT_TOLERANCE  # nufft: finufft's relative tolerance (S within ~ this of the exact sums)

    # Keys of the retired grid method: files written before still hold them (with these defaults); any
    # other value is refused (docs/structure-factor.md, "The grid method (retired)").
    RETIRED = {"mesh": 0, "assignment": "tsc", "interlace": True}

    def validate(self):
        if not isinstance(self.every, int) or self.every < 0:
            _fail("structure_factor.every", f"must be an integer >= 0 (0 = off), got {self.every!r}")
        if any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in self.steps):
            _fail("structure_factor.steps", f"must be a list of integers >= 0, got {list(self.steps)}")
        if not isinstance(self.bins, int) or self.bins < 1:
            _fail("structure_factor.bins", f"must be an integer >= 1, got {self.bins!r}")
        if self.k_max < 0:
            _fail("structure_factor.k_max", f"must be > 0 (or 0 = 2 pi 8 / L), got {self.k_max!r}")
        if self.k_min < 0 or (self.k_max and self.k_min >= self.k_max):
            _fail("structure_factor.k_min", f"must be in [0, k_max), got {self.k_min!r}")
        if self.method == "grid":
            _fail("structure_factor.method", "\"grid\" (mesh + FFT) was retired: use \"nufft\" (or \"auto\"), "
                  "more accurate, faster and smaller (docs/structure-factor.md)")
        if self.method not in ("auto", "direct", "nufft"):
            _fail("structure_factor.method", f"must be \"auto\", \"direct\" or \"nufft\", got {self.method!r}")
        if not isinstance(self.tolerance, float) or not 0 < self.tolerance < 1:
            _fail("structure_factor.tolerance", f"must be a float in (0, 1), got {self.tolerance!r}")


SECTIONS = {"system": System, "dynamics": Dynamics, "run": Run, "output": Output,
            "structure_factor": StructureFactor}


@dataclass(frozen=True)
class RunConfig:
    """The whole run: system, dynamics, run, output."""
    system: System
    dynamics: Dynamics
    run: Run = field(default_factory=Run)
    output: Output = field(default_factory=Output)
    structure_factor: StructureFactor = field(default_factory=StructureFactor)

    # ------------------------------------------------------------------------------------- construction
    @classmethod
    def from_dict(cls, data):
        if not isinstance(data, dict):
            raise ConfigError(f"configuration must be a table of sections, got {type(data).__name__}")
        unknown = set(data) - set(SECTIONS)
        if unknown:
            raise ConfigError(f"{sorted(unknown)[0]}: unknown section; allowed: {', '.join(SECTIONS)}")
        parts = {}
        for name, klass in SECTIONS.items():
            table = data.get(name, {})
            if not isinstance(table, dict):
                raise ConfigError(f"{name}: must be a table, got {table!r}")
            if klass is Dynamics:
                part = Dynamics.from_table(table)
                part.validate()
                parts[name] = part
                continue
            fields = {f.name: f for f in dataclasses.fields(klass)}
            table = _drop_retired(name, klass, table)
            for key in table:
                if key not in fields:
                    raise ConfigError(f"{name}.{key}: unknown key; allowed: {', '.join(fields)}")
            missing = [f.name for f in fields.values()
                       if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
                       and f.name not in table]
            if missing:
                raise ConfigError(f"{name}.{missing[0]}: required key is missing")
            kwargs = {k: _coerce(name, k, v, fields[k]) for k, v in table.items()}
            part = klass(**kwargs)
            part.validate()
            parts[name] = part
        config = cls(**parts)
        config.validate()
        return config

    @classmethod
    def from_stored(cls, data):
        """From the parameters stored in an output file (``/parameters`` config_toml, parsed): as
        ``from_dict``, but a file written before the schemes declared their own keys holds every key of
        the old flat [dynamics] table; those the scheme does not take are dropped when at their old
        defaults (``core.schemes.stored_dynamics``)."""
        if isinstance(data, dict) and isinstance(data.get("dynamics"), dict):
            data = {**data, "dynamics": stored_dynamics(data["dynamics"])}
        return cls.from_dict(data)

    @classmethod
    def from_toml(cls, path, overrides=()):
        return cls.from_dict(apply_overrides(read_toml(path, "config", ConfigError), overrides))

    def replace(self, **sections):
        return dataclasses.replace(self, **sections)

    def validate(self):
        box = self.box_edges()
        largest = self.largest_diameter()
        if min(box[:self.system.dim]) < 2 * largest * (1 + 1e-6):
            raise ConfigError(f"system: box edge {min(box[:self.system.dim]):.4g} is smaller than two "
                              f"diameters ({2 * largest:.4g}); increase system.n or lower system.phi")

    # ------------------------------------------------------------------------------------------ derived
    def largest_diameter(self):
        """The largest possible contact distance (an upper bound for a random polydispersity): the
        interaction range that sizes cells and limits the rank count."""
        s = self.system
        if s.radii:
            return 2.0 * max(s.radii)
        return 2.0 * s.radius * (1.0 + s.polydispersity)

    def species_radii(self):
        """(radii, fractions) of the species; one species of system.radius if monodisperse."""
        s = self.system
        if s.radii:
            fr = s.fractions or tuple(1.0 / len(s.radii) for _ in s.radii)
            return list(s.radii), list(fr)
        return [], []

    def mean_particle_volume(self):
        s = self.system
        unit = BALL_VOLUME[s.dim]
        if s.radii:
            radii, fr = self.species_radii()
            return sum(f * unit * r ** s.dim for r, f in zip(radii, fr))
        if s.polydispersity:
            a, b = s.radius * (1 - s.polydispersity), s.radius * (1 + s.polydispersity)
            return unit * (b ** (s.dim + 1) - a ** (s.dim + 1)) / ((s.dim + 1) * (b - a))
        return unit * s.radius ** s.dim

    def box_edges(self):
        """Box edges (core/box.storage_width(d),), cubic: L^d phi = N <v>. The third edge of a 2-d box is
        1 (unused)."""
        s = self.system
        L = (s.n * self.mean_particle_volume() / s.phi) ** (1.0 / s.dim)
        return [L, L, 1.0] if s.dim == 2 else [L] * s.dim

    def to_dict(self):
        def table(part):
            return part.to_table() if isinstance(part, Dynamics) else dataclasses.asdict(part)
        return {name: {k: (list(v) if isinstance(v, tuple) else v) for k, v in table(getattr(self, name)).items()}
                for name in SECTIONS}

    def to_toml(self):
        return toml_text(self.to_dict())


def _drop_retired(name, klass, table):
    """``table`` without the section's retired keys that hold their old default (files written before
    the retirement); a retired key with any other value is refused."""
    retired = getattr(klass, "RETIRED", {})
    for key in set(table) & set(retired):
        if table[key] != retired[key] or type(table[key]) is not type(retired[key]):
            raise ConfigError(f"{name}.{key}: retired with the grid method of S(k); remove it and use "
                              "method = \"nufft\" (docs/structure-factor.md)")
    return {k: v for k, v in table.items() if k not in retired}


def read_toml(path, what, error):
    """The parsed TOML file at ``path``; a missing file or bad TOML raises ``error`` naming ``what``."""
    path = Path(path)
    if path.is_dir():
        raise error(f"{what}: {str(path)!r} is a directory, not a TOML file")
    if not path.is_file():
        raise error(f"{what}: no such file {str(path)!r}")
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise error(f"{what}: cannot read {path} ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise error(f"{what}: {path} is not a UTF-8 text file (byte {exc.start}: {exc.reason}); "
                    f"TOML configs are UTF-8 text") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{what}: {path} is not valid TOML ({exc})") from None


def apply_overrides(data, overrides):
    """Apply ``section.key=value`` strings (values parsed as TOML, bare words as strings)."""
    data = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    for item in overrides:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise ConfigError(f"--set {item!r}: expected section.key=value, e.g. dynamics.kick_size=0.05")
        key, raw = item.split("=", 1)
        section, name = key.strip().split(".", 1)
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        data.setdefault(section, {})
        if not isinstance(data[section], dict):
            raise ConfigError(f"--set {item!r}: {section} is not a section")
        data[section][name] = value
    return data


def config_fields():
    """{"section.key": dataclasses.Field} of every key a run config may hold; [dynamics] lists the union
    of every scheme's keys (which of them a run takes depends on its scheme). For tools (sweeps)."""
    out = {}
    for section, klass in SECTIONS.items():
        if klass is Dynamics:
            fields = {f.name: f for f in dataclasses.fields(Dynamics) if f.name != "parameters"}
            fields.update(all_parameter_fields())
        else:
            fields = {f.name: f for f in dataclasses.fields(klass)}
        out.update({f"{section}.{k}": f for k, f in fields.items()})
    return out


def _coerce(section, key, value, fld):
    """Accept ints where floats are expected and lists where tuples are; refuse other type mismatches."""
    default = fld.default
    kind = type(default) if default is not dataclasses.MISSING else None
    if kind is None and isinstance(fld.type, type):
        kind = fld.type      # a required key: its annotation
    if key in ("n", "phi") and section == "system":
        kind = int if key == "n" else float
    if key == "scheme":
        kind = str
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is float and isinstance(value, float) and not math.isfinite(value):
        # TOML has inf and nan; no parameter means anything there (docs/configuration.md, "Numerical guard").
        raise ConfigError(f"{section}.{key}: must be a finite number, got {value!r}")
    if kind is tuple and isinstance(value, list):
        if any(isinstance(v, float) and not math.isfinite(v) for v in value):
            raise ConfigError(f"{section}.{key}: every entry must be a finite number, got {value!r}")
        return tuple(value)
    if kind is not None and not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{section}.{key}: expected {kind.__name__}, got {value!r}")
    return value


def toml_text(tables):
    """TOML text of {section: {key: value}} (the form to_toml writes and output files store)."""
    lines = []
    for name, table in tables.items():
        lines.append(f"[{name}]")
        for k, v in table.items():
            lines.append(f"{k} = {_toml_value(v)}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(v)
