"""The plan of a study: a sweep file (TOML: [sweep], [base], [axes], [ranks], [slurm]) resolved into one
validated run config and rank count per run (docs/sweeps.md, "The sweep file").

Every planned run is validated (config, rank count against its box) before anything is written or run;
``write_plan`` then creates one directory per run with its full ``config.toml`` and the manifest.
"""
import dataclasses
import itertools
import json
import math
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from mpisim.config import SECTIONS, ConfigError, RunConfig, config_fields, read_toml
from mpisim.core.schemes import parameter_labels

from .status import CONFIG, OUTPUT, RUNNING_MARKER, config_differs, run_state, write_manifest

#: short labels for run directory names
LABELS = {**parameter_labels(), "polydispersity": "poly"}     # scheme keys: their declared labels
#: config keys an axis may not vary: the seed comes from sweep.seeds, the output path from the plan
FIXED = {"system.seed": "use sweep.seeds = [...] for seeds", "output.path": "the plan sets it"}
SWEEP_KEYS = {"name": str, "out_dir": str, "max_runs": int, "seeds": list}
#: [slurm] keys and defaults (docs/sweeps.md); launcher "auto": detected in the job (studies/slurm.py)
SLURM_DEFAULTS = {"partition": "", "account": "", "time": "01:00:00", "ranks_per_node": 32,
                  "modules": [], "setup": [], "array_limit": 0, "launcher": "auto", "sbatch": [],
                  "signal_seconds": 120, "runs_per_task": 1}


class SweepError(ValueError):
    """A sweep that cannot be planned; the message names the file, the key and what is allowed."""


def _fields():
    """{"section.key": field} of every run-config key (every scheme's [dynamics] keys), and
    {key: ["section.key", ...]} for bare names (more than one: ambiguous, refused)."""
    full = config_fields()
    bare = {}
    for name in full:
        bare.setdefault(name.split(".", 1)[1], []).append(name)
    return full, bare


# --------------------------------------------------------------------------------------------- sweep
@dataclass(frozen=True)
class PlannedRun:
    """One run of a sweep: its directory name, swept values, resolved config and rank count."""
    name: str
    dir: Path
    values: dict          # {"section.key": value} of the axes, plus "system.seed"
    config: RunConfig
    ranks: int

    @property
    def output(self):
        return self.dir / OUTPUT

    @property
    def cost(self):
        """Work estimate (particle-steps) for ordering and the time-left estimate."""
        return self.config.system.n * self.config.run.steps


@dataclass(frozen=True)
class Sweep:
    """A parsed sweep file. Paths are absolute; ``axes`` is [("section.key", [values])] in file order."""
    path: Path
    name: str
    out_dir: Path
    max_runs: int
    seeds: tuple
    base: dict
    axes: tuple
    rank_rule: tuple      # ((min_n, ranks), ...) ascending in min_n
    slurm: dict

    @classmethod
    def load(cls, path):
        path = Path(path).resolve()
        data = read_toml(path, "sweep file", SweepError)
        allowed = ("sweep", "base", "axes", "ranks", "slurm")
        for key, value in data.items():
            if key not in allowed:
                raise SweepError(f"{path.name}: [{key}]: unknown section; allowed: {', '.join(allowed)}")
            if not isinstance(value, dict):
                raise SweepError(f"{path.name}: {key} must be a table [{key}]")
        where = path.name
        head = data.get("sweep", {})
        for key, value in head.items():
            if key not in SWEEP_KEYS:
                raise SweepError(f"{where}: sweep.{key}: unknown key; allowed: {', '.join(SWEEP_KEYS)}")
            if not isinstance(value, SWEEP_KEYS[key]) or isinstance(value, bool):
                raise SweepError(f"{where}: sweep.{key}: expected {SWEEP_KEYS[key].__name__}, got {value!r}")
        name = head.get("name", path.stem)
        if not re.fullmatch(r"[A-Za-z0-9._+-]+", name):
            raise SweepError(f"{where}: sweep.name: letters, digits and ._+- only, got {name!r}")
        out_dir = (path.parent / head.get("out_dir", f"runs/{name}")).resolve()
        max_runs = head.get("max_runs", 1000)
        if max_runs < 1:
            raise SweepError(f"{where}: sweep.max_runs: must be >= 1, got {max_runs}")
        base = data.get("base", {})
        base = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
        base_seed = base.get("system", {}).get("seed", 0)
        seeds = tuple(head.get("seeds", [base_seed]))
        if not seeds:
            raise SweepError(f"{where}: sweep.seeds: empty list; give at least one seed")
        if any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in seeds) or \
                len(set(seeds)) != len(seeds):
            raise SweepError(f"{where}: sweep.seeds: distinct integers >= 0, got {list(seeds)}")
        def resolve(init):   # an initial-configuration file is relative to the sweep file
            return init if not isinstance(init, str) or init == "random" else str((path.parent / init).resolve())

        if isinstance(base.get("system"), dict) and "init" in base["system"]:
            base["system"]["init"] = resolve(base["system"]["init"])
        axes = [(k, [resolve(x) for x in v] if k == "system.init" else v)
                for k, v in _parse_axes(data.get("axes", {}), where)]
        return cls(path=path, name=name, out_dir=out_dir, max_runs=max_runs, seeds=seeds, base=base,
                   axes=tuple(axes),
                   rank_rule=_parse_rank_rule(data.get("ranks", {}), where),
                   slurm=_parse_slurm(data.get("slurm", {}), where))

    def ranks_for(self, n):
        """Ranks of a run of n particles: the last rule entry whose min_n <= n (1 below all)."""
        ranks = 1
        for min_n, r in self.rank_rule:
            if n >= min_n:
                ranks = r
        return ranks

    def plan(self, allow_many=False):
        """Every run, validated (config and rank count), in axis order with the seed varying fastest.

        Raises SweepError before anything is written. ``allow_many``: accept more than sweep.max_runs.
        """
        keys = [k for k, _ in self.axes] + ["system.seed"]
        grid = list(itertools.product(*[v for _, v in self.axes], self.seeds))
        if len(grid) > self.max_runs and not allow_many:
            raise SweepError(f"{self.path.name}: the grid has {len(grid)} runs, more than sweep.max_runs = "
                             f"{self.max_runs}; pass --yes to plan them anyway, or raise sweep.max_runs")
        runs, names = [], {}
        for combo in grid:
            values = dict(zip(keys, combo))
            name = run_name(values)
            if name in names:
                raise SweepError(f"{self.path.name}: runs {names[name]} and {values} get the same directory "
                                 f"name {name!r} (values equal to 6 digits); make the axis values distinct")
            names[name] = values
            data = {k: dict(v) if isinstance(v, dict) else v for k, v in self.base.items()}
            for key, value in values.items():
                section, field = key.split(".")
                data.setdefault(section, {})
                if not isinstance(data[section], dict):
                    raise SweepError(f"{self.path.name}: base.{section} must be a table")
                data[section][field] = value
            data.setdefault("output", {})
            if isinstance(data["output"], dict):
                data["output"]["path"] = OUTPUT
            try:
                config = RunConfig.from_dict(data)
            except ConfigError as exc:
                raise SweepError(f"{self.path.name}: run {name}: {exc} (from [base] and [axes])") from None
            runs.append(PlannedRun(name=name, dir=self.out_dir / name, values=values, config=config,
                                   ranks=self.ranks_for(config.system.n)))
        if not runs:
            raise SweepError(f"{self.path.name}: the plan is empty")
        check_rank_counts(runs, self.path.name)
        return runs


def _parse_axes(table, where):
    full, bare = _fields()
    flat = []
    for key, value in table.items():
        if key in SECTIONS and isinstance(value, dict) and not _is_range(value):
            flat += [(f"{key}.{k}", v) for k, v in value.items()]   # dotted keys: system.n = [...]
        else:
            flat.append((key, value))
    axes, seen = [], set()
    allowed = ", ".join(sorted(k for k, names in bare.items() if len(names) == 1 and names[0] not in FIXED))
    for key, value in flat:
        names = bare.get(key, [key]) if "." not in key else [key]
        if len(names) > 1:   # e.g. steps: run.steps or structure_factor.steps; never guess
            raise SweepError(f"{where}: axes.{key}: ambiguous; give the section: {' or '.join(names)}")
        name = names[0]
        if name not in full:
            raise SweepError(f"{where}: axes.{key}: unknown axis; allowed: {allowed} (or section.key)")
        if name in FIXED:
            raise SweepError(f"{where}: axes.{key}: cannot be swept ({FIXED[name]})")
        if name in seen:
            raise SweepError(f"{where}: axes.{key}: given twice")
        seen.add(name)
        values = _axis_values(value, f"{where}: axes.{key}", full[name])
        axes.append((name, values))
    return axes


def _is_range(value):
    return isinstance(value, dict) and "start" in value and set(value) <= {"start", "stop", "num", "log"}


def _axis_values(value, where, field):
    if isinstance(value, dict):
        if not _is_range(value) or not {"start", "stop", "num"} <= set(value):
            raise SweepError(f"{where}: a list of values or a range {{start, stop, num, log = false}}, "
                             f"got {value!r}")
        start, stop, num, log = value["start"], value["stop"], value["num"], value.get("log", False)
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (start, stop)) or \
                not isinstance(num, int) or isinstance(num, bool) or not isinstance(log, bool):
            raise SweepError(f"{where}: start and stop must be numbers, num an integer, log true/false")
        if num < 1:
            raise SweepError(f"{where}: empty axis (num = {num}); num must be >= 1")
        if log and not (start > 0 and stop > 0):
            raise SweepError(f"{where}: a log range needs start > 0 and stop > 0, got {start}, {stop}")
        if num == 1:
            values = [float(start)]
        elif log:
            a, b = math.log(start), math.log(stop)
            values = [math.exp(a + (b - a) * i / (num - 1)) for i in range(num)]
        else:
            values = [start + (stop - start) * i / (num - 1) for i in range(num)]
        values = [float(f"{v:.10g}") for v in values]   # 0.6000000000000001 -> 0.6
        if field.default is not dataclasses.MISSING and type(field.default) is int or field.name == "n":
            values = [int(round(v)) for v in values]
        return values
    if not isinstance(value, list):
        raise SweepError(f"{where}: a list of values or a range {{start, stop, num}}, got {value!r}")
    if not value:
        raise SweepError(f"{where}: empty axis; give at least one value")
    if len(set(map(repr, value))) != len(value):
        raise SweepError(f"{where}: repeated values in {value}")
    return list(value)


def _parse_rank_rule(table, where):
    for key in table:
        if key != "rule":
            raise SweepError(f"{where}: ranks.{key}: unknown key; allowed: rule")
    rule = table.get("rule", [])
    ok = isinstance(rule, list) and all(
        isinstance(r, list) and len(r) == 2 and all(isinstance(x, int) and not isinstance(x, bool)
                                                    for x in r) and r[0] >= 0 and r[1] >= 1 for r in rule)
    if not ok:
        raise SweepError(f"{where}: ranks.rule: a list of [min_n, ranks] pairs of integers (min_n >= 0, "
                         f"ranks >= 1), e.g. [[0, 1], [100000, 8]]; got {rule!r}")
    mins = [r[0] for r in rule]
    if mins != sorted(set(mins)):
        raise SweepError(f"{where}: ranks.rule: min_n must increase strictly, got {mins}")
    return tuple((int(a), int(b)) for a, b in rule)


def _parse_slurm(table, where):
    out = dict(SLURM_DEFAULTS)
    for key, value in table.items():
        if key not in SLURM_DEFAULTS:
            raise SweepError(f"{where}: slurm.{key}: unknown key; allowed: {', '.join(SLURM_DEFAULTS)}")
        kind = type(SLURM_DEFAULTS[key])
        if not isinstance(value, kind) or isinstance(value, bool) or \
                (kind is list and not all(isinstance(x, str) for x in value)):
            raise SweepError(f"{where}: slurm.{key}: expected {'a list of strings' if kind is list else kind.__name__}"
                             f", got {value!r}")
        out[key] = value
    check_slurm_options(out, where)
    return out


def check_slurm_options(opts, where):
    if opts["ranks_per_node"] < 1:
        raise SweepError(f"{where}: slurm.ranks_per_node: must be >= 1, got {opts['ranks_per_node']}")
    if opts["array_limit"] < 0:
        raise SweepError(f"{where}: slurm.array_limit: must be >= 0 (0 = no limit), got {opts['array_limit']}")
    if not re.fullmatch(r"(\d+-)?\d+(:\d\d){0,2}", opts["time"]):
        raise SweepError(f"{where}: slurm.time: SLURM time like \"02:00:00\" or \"1-00:00:00\", "
                         f"got {opts['time']!r}")
    if not opts["launcher"].strip():
        raise SweepError(f"{where}: slurm.launcher: \"auto\" (detected in the job) or the MPI launcher, "
                         f"e.g. \"srun --mpi=pmix\" or \"mpirun\"")
    if opts["signal_seconds"] < 0:
        raise SweepError(f"{where}: slurm.signal_seconds: must be >= 0 (0 = no signal before the time "
                         f"limit), got {opts['signal_seconds']}")
    if opts["runs_per_task"] < 1:
        raise SweepError(f"{where}: slurm.runs_per_task: must be >= 1, got {opts['runs_per_task']}")


def run_name(values):
    """Directory name from the swept values, e.g. ``n=1000_phi=0.6_bf=0.2_seed=1``."""
    parts = []
    for key, value in values.items():
        field = key.split(".")[1]
        if isinstance(value, float):
            text = f"{value:.6g}"
        elif key == "system.init" and value != "random":
            text = re.sub(r"[^A-Za-z0-9.+-]+", "-", Path(value).stem)
        else:
            text = re.sub(r"[^A-Za-z0-9.+-]+", "-", str(value))
        parts.append(f"{LABELS.get(field, field)}={text}")
    return "_".join(parts)


def check_rank_counts(runs, where):
    """SweepError if a run's rank count cannot split its box (the engine's ``rank_grid``).

    rank_grid needs MPI_Dims_create, which needs MPI_Init: it runs in a child process so that the
    driver never initialises MPI (a driver with MPI initialised cannot start mpirun children cleanly).
    """
    cases = {}
    for r in runs:
        if r.ranks > 1:
            key = (r.ranks, r.config.system.dim, tuple(r.config.box_edges()), r.config.largest_diameter())
            cases.setdefault(key, r)
    if not cases:
        return
    code = ("import json, sys\nfrom mpisim.parallel.comm import rank_grid\nout = []\n"
            "for p, d, box, cut in json.load(sys.stdin):\n"
            "    try:\n        rank_grid(p, d, box, cut); out.append('')\n"
            "    except ValueError as exc:\n        out.append(str(exc))\n"
            "print(json.dumps(out))\n")
    proc = subprocess.run([sys.executable, "-c", code], input=json.dumps(list(cases)), text=True,
                          capture_output=True)
    if proc.returncode != 0:
        raise SweepError(f"{where}: could not check the rank counts: {proc.stderr.strip()[-500:]}")
    for (ranks, _, _, _), run, error in zip(cases, cases.values(), json.loads(proc.stdout.splitlines()[-1])):
        if error:
            raise SweepError(f"{where}: ranks.rule gives run {run.name} (N = {run.config.system.n}) "
                             f"{ranks} ranks, but its box does not allow it: {error}")


def write_plan(sweep, runs):
    """Create each run's directory and config.toml, copy the sweep file, write the manifest; returns
    the runs' states.

    Refuses (before writing anything) when a run directory holds output made from another config.
    """
    for run in runs:
        old = run.dir / CONFIG
        if old.is_file() and config_differs(old, run.config) and \
                (run.output.exists() or (run.dir / RUNNING_MARKER).exists()):
            raise SweepError(f"{run.dir}: holds output of a different config than the sweep now gives "
                             f"(see {old}); remove that directory or choose another sweep.out_dir")
    for run in runs:
        run.dir.mkdir(parents=True, exist_ok=True)
        cfg = run.dir / CONFIG
        text = run.config.to_toml()
        if not cfg.is_file() or cfg.read_text() != text:
            cfg.write_text(text)
    (sweep.out_dir / "sweep.toml").write_text(sweep.path.read_text())
    states = {r.name: run_state(r) for r in runs}
    write_manifest(sweep, runs, states)
    return states
