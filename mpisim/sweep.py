"""Parameter sweeps: ``launch/sweep {plan,run,slurm,status} SWEEP.toml`` (docs/sweeps.md).

A sweep file holds a base run config, the axes to vary, the seeds and a rule giving each run its rank
count. ``plan`` resolves it into one directory per run (``config.toml``: the full config) and a manifest
(``manifest.tsv``) that ``python -m analysis`` reads; ``run`` executes the runs here, packing them onto
the cores; ``slurm`` writes sbatch scripts for the same plan; ``status`` tells what is done.

The state of a run lives in its directory, so the plan is the only shared thing between a local driver,
cluster jobs and ``status``: ``run.h5`` whose /parameters/provenance ``end_time`` is set (done),
``RUNNING`` (JSON: host, pid of the launched process), ``FAILED`` (the error), ``run.log`` (its output).
Every planned run is validated (config, rank count against its box) before anything is written or run.
"""
import argparse
import dataclasses
import itertools
import json
import math
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .config import SECTIONS, ConfigError, RunConfig, config_fields, read_toml, tomllib
from .core.schemes import parameter_labels

EXIT_USAGE = 2
MANIFEST = "manifest.tsv"
OUTPUT = "run.h5"
CONFIG = "config.toml"
LOG = "run.log"
RUNNING = "RUNNING"
FAILED = "FAILED"

#: statuses written to the manifest; the analysis package reads only "done" rows
STATUSES = ("done", "running", "failed", "pending")
#: columns always in the manifest (after name, path, status, ranks), from the resolved config
PARAM_COLUMNS = ("scheme", "dim", "n", "phi", "kick_size", "learning_rate", "batch_fraction",
                 "potential", "seed", "steps")
#: short labels for run directory names
LABELS = {**parameter_labels(), "polydispersity": "poly"}     # scheme keys: their declared labels
#: config keys an axis may not vary: the seed comes from sweep.seeds, the output path from the plan
FIXED = {"system.seed": "use sweep.seeds = [...] for seeds", "output.path": "the plan sets it"}
SWEEP_KEYS = {"name": str, "out_dir": str, "max_runs": int, "seeds": list}
MAX_ARRAY = 1000
SLURM_DEFAULTS = {"partition": "", "account": "", "time": "01:00:00", "ranks_per_node": 32,
                  "modules": [], "setup": [], "array_limit": 0, "launcher": "srun", "sbatch": []}


class SweepError(ValueError):
    """A sweep that cannot be planned; the message names the file, the key and what is allowed."""


def _fields():
    """{"section.key": field} of every run-config key (every scheme's [dynamics] keys), and
    {key: "section.key"} for bare names."""
    full = config_fields()
    return full, {name.split(".", 1)[1]: name for name in full}


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
    allowed = ", ".join(sorted(k for k in bare if bare[k] not in FIXED))
    for key, value in flat:
        name = key if "." in key else bare.get(key, key)
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
    _check_slurm(out, where)
    return out


def _check_slurm(opts, where):
    if opts["ranks_per_node"] < 1:
        raise SweepError(f"{where}: slurm.ranks_per_node: must be >= 1, got {opts['ranks_per_node']}")
    if opts["array_limit"] < 0:
        raise SweepError(f"{where}: slurm.array_limit: must be >= 0 (0 = no limit), got {opts['array_limit']}")
    if not re.fullmatch(r"(\d+-)?\d+(:\d\d){0,2}", opts["time"]):
        raise SweepError(f"{where}: slurm.time: SLURM time like \"02:00:00\" or \"1-00:00:00\", "
                         f"got {opts['time']!r}")
    if not opts["launcher"].strip():
        raise SweepError(f"{where}: slurm.launcher: must name the MPI launcher, e.g. \"srun\"")


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
    """SweepError if a run's rank count cannot split its box (``mpisim.parallel.comm.rank_grid``).

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


# --------------------------------------------------------------------------------------- run state
def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def output_finished(path):
    """True if ``path`` is an mpisim output whose provenance has a non-empty end_time."""
    path = Path(path)
    if not path.is_file():
        return False
    import h5py
    try:
        with h5py.File(path, "r") as f:
            end = f["parameters/provenance"].attrs.get("end_time", "")
    except (OSError, KeyError):   # unreadable, being written (file lock), or no provenance yet
        return False
    if isinstance(end, bytes):
        end = end.decode()
    return bool(str(end).strip())


def running_marker(run_dir):
    """The RUNNING marker's content if it belongs to a live process (any on another host), else None."""
    marker = Path(run_dir) / RUNNING
    try:
        info = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    if info.get("host") == socket.gethostname() and not _pid_alive(int(info.get("pid", 0))):
        return None   # the process died without cleaning up (killed): not running
    return info


def run_state(run):
    """(status, note) of a planned run: done, running, failed (note: the error) or pending."""
    marker = running_marker(run.dir)
    if marker is not None:
        return "running", f"on {marker.get('host', '?')} since {marker.get('start', '?')}"
    if output_finished(run.output):
        return "done", ""
    failed = run.dir / FAILED
    if failed.is_file():
        why = failed.read_text().strip()
        return "failed", why.splitlines()[0] if why else "failed"
    if run.output.exists():
        from .io import checkpoint_path
        return "pending", "interrupted: partial output" + (
            " and a checkpoint" if Path(checkpoint_path(run.output)).is_file() else "")
    return "pending", ""


def status_counts(states):
    """{status: number of runs} over STATUSES."""
    return {s: sum(v[0] == s for v in states.values()) for s in STATUSES}


def write_manifest(sweep, runs, states):
    """Write ``manifest.tsv`` (atomically): name, path, status, ranks, parameters, error."""
    swept = [k.split(".")[1] for k, _ in sweep.axes if k.split(".")[1] not in PARAM_COLUMNS]
    columns = ["name", "path", "status", "ranks", *PARAM_COLUMNS, *swept, "error"]
    lines = ["\t".join(columns)]
    for run in runs:
        status, note = states[run.name]
        flat = {}
        for section, table in run.config.to_dict().items():
            flat.update(table)
        row = {"name": run.name, "path": f"{run.name}/{OUTPUT}", "status": status, "ranks": run.ranks,
               "error": note if status == "failed" else ""}
        for col in columns:
            if col not in row:
                row[col] = flat.get(col, "")
        lines.append("\t".join(_cell(row[c]) for c in columns))
    sweep.out_dir.mkdir(parents=True, exist_ok=True)
    tmp = sweep.out_dir / f".{MANIFEST}.{os.getpid()}"
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, sweep.out_dir / MANIFEST)


def _cell(value):
    if isinstance(value, float):
        return f"{value:.10g}"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return re.sub(r"[\t\r\n]+", " ", str(value))


def _config_differs(path, config):
    """True if the config file at ``path`` sets a key of ``config`` to another value (keys only one of
    them knows, e.g. added by a newer mpisim with their defaults, do not count)."""
    try:
        old = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return True
    new = config.to_dict()
    return any(key in old.get(section, {}) and old[section][key] != value
               for section, table in new.items() for key, value in table.items())


def write_plan(sweep, runs):
    """Create each run's directory and config.toml, copy the sweep file, write the manifest.

    Refuses (before writing anything) when a run directory holds output made from another config.
    """
    for run in runs:
        old = run.dir / CONFIG
        if old.is_file() and _config_differs(old, run.config) and \
                (run.output.exists() or (run.dir / RUNNING).exists()):
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


# ---------------------------------------------------------------------------------------- execution
def mpisim_command():
    exe = Path(sys.executable).parent / "mpisim"
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "mpisim"]


def launcher_prefix(ranks, launcher="mpirun"):
    """The MPI launcher words for a run of ``ranks`` ranks (nothing for one rank under mpirun)."""
    if launcher == "mpirun":
        if ranks == 1:
            return []
        flags = ["--oversubscribe"] + (["--allow-run-as-root"] if os.geteuid() == 0 else [])
        return ["mpirun", "-n", str(ranks), *flags]
    return shlex.split(launcher) + ["-n", str(ranks)]


def run_command(run_dir, ranks, mode, launcher="mpirun"):
    """[launcher] mpisim run config.toml -o run.h5 --quiet [--resume | --overwrite]."""
    run_dir = Path(run_dir)
    cmd = launcher_prefix(ranks, launcher) + mpisim_command() + [
        "run", str(run_dir / CONFIG), "-o", str(run_dir / OUTPUT), "--quiet"]
    return cmd + {"fresh": [], "resume": ["--resume"], "overwrite": ["--overwrite"]}[mode]


def _die_with_parent():
    """Child preexec: get SIGTERM if the driver dies (even by SIGKILL), so no run is left orphaned."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Attempt:
    """One launched process of a run (rank-local to the driver): its Popen, log and mode."""

    def __init__(self, run_dir, ranks, launcher="mpirun", mode=None):
        self.dir, self.ranks, self.launcher = Path(run_dir), ranks, launcher
        output = self.dir / OUTPUT
        if mode is None:
            from .io import checkpoint_path
            mode = "fresh" if not output.exists() else (
                "resume" if Path(checkpoint_path(output)).is_file() else "overwrite")
        self.mode = mode
        self.cmd = run_command(self.dir, ranks, mode, launcher)
        (self.dir / FAILED).unlink(missing_ok=True)
        log = self.dir / LOG
        self.log_start = log.stat().st_size if log.exists() else 0
        self.start = time.time()
        with open(log, "a") as fh:
            fh.write(f"# {time.strftime('%Y-%m-%d %H:%M:%S')} on {socket.gethostname()}: "
                     f"{shlex.join(self.cmd)}\n")
        self._log = open(log, "a")
        self.proc = subprocess.Popen(self.cmd, cwd=self.dir, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True,
                                     preexec_fn=_die_with_parent)
        marker = {"host": socket.gethostname(), "pid": self.proc.pid, "driver": os.getpid(),
                  "start": time.strftime("%Y-%m-%dT%H:%M:%S"), "mode": mode,
                  "job": os.environ.get("SLURM_JOB_ID", "")}
        (self.dir / RUNNING).write_text(json.dumps(marker) + "\n")

    def poll(self):
        return self.proc.poll()

    def terminate(self):
        """SIGTERM the run's process group (mpirun forwards it to the ranks)."""
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass

    def kill(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def finish(self, interrupted=False):
        """Record the outcome. Returns "done", "failed", "interrupted" or "retry" (resume refused)."""
        rc = self.proc.wait()
        self._log.close()
        (self.dir / RUNNING).unlink(missing_ok=True)
        if interrupted:
            return "interrupted"
        if rc == 0 and output_finished(self.dir / OUTPUT):
            return "done"
        if self.mode == "resume" and rc == EXIT_USAGE:
            return "retry"   # e.g. no checkpoint to resume from: start again from scratch
        error = self.error_text(rc)
        (self.dir / FAILED).write_text(error + "\n")
        return "failed"

    def error_text(self, rc):
        try:
            with open(self.dir / LOG) as fh:
                fh.seek(self.log_start)
                lines = [ln.strip() for ln in fh.read().splitlines() if ln.strip() and not ln.startswith("# ")]
        except OSError:
            lines = []
        pick = [ln for ln in lines if ln.startswith("mpisim:") and ("error" in ln or "failed" in ln)]
        detail = pick[0] if pick else (lines[-1] if lines else "no output")
        if rc == 0:
            detail = f"exited 0 but {OUTPUT} is not finished; {detail}"
        return f"exit status {rc}: {detail[:400]}"


class _Stop(Exception):
    pass


def _fmt_time(seconds):
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def _time_model(finished):
    """Least-squares (a, b >= 0) of core-seconds = a + b * particle-steps over finished runs: a is the
    start-up cost (imports, MPI), which dominates small runs."""
    n = len(finished)
    mx = sum(c for c, _ in finished) / n
    my = sum(t for _, t in finished) / n
    var = sum((c - mx) ** 2 for c, _ in finished)
    b = sum((c - mx) * (t - my) for c, t in finished) / var if var > 0 else 0.0
    if b <= 0:
        return 0.0, my / mx if mx > 0 else 0.0
    return max(0.0, my - b * mx), b


def execute(sweep, runs, cores, progress_seconds=10.0, retry_failed=True, out=sys.stdout, states=None):
    """Run every unfinished run here, at most ``cores`` ranks at a time. Returns the final states.
    ``states``: the runs' states if the caller has just read them (``write_plan``).

    Larger runs start first (shorter makespan); a run that does not fit the free cores lets smaller ones
    start (backfill). A run with more ranks than cores takes all cores (oversubscribed). SIGINT/SIGTERM
    stop the running runs (their partial outputs are resumed next time).
    """
    states = dict(states) if states is not None else {r.name: run_state(r) for r in runs}
    todo = [r for r in runs if states[r.name][0] == "pending" or
            (retry_failed and states[r.name][0] == "failed")]
    # Runs another driver on this host is running: wait for them (and take them over if it dies).
    # Runs on another host (cluster jobs) are left alone.
    here = socket.gethostname()
    elsewhere = [r for r in runs if states[r.name][0] == "running"]
    waiting = [r for r in elsewhere if (running_marker(r.dir) or {}).get("host") == here]
    remote = len(elsewhere) > len(waiting)
    todo.sort(key=lambda r: (-min(r.ranks, cores), -r.cost))
    skipped = sum(states[r.name][0] == "done" for r in runs)
    print(f"sweep {sweep.name}: {len(runs)} runs, {skipped} already done, {len(todo)} to run on {cores} "
          f"cores{f', {len(waiting)} running in another driver (waiting for them)' if waiting else ''}"
          f"{f', {len(elsewhere) - len(waiting)} running on other hosts (left alone)' if remote else ''}; "
          f"manifest {sweep.out_dir / MANIFEST}", file=out, flush=True)
    active = {}                # name -> (Attempt, run)
    t0 = time.time()
    finished = []              # (particle-steps, core-seconds) of the runs finished in this session
    last_print = 0.0
    stop = []

    def on_signal(signum, frame):   # only a flag: the loop stops at a consistent point
        stop.append(signum)

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}

    def report(force=False):
        nonlocal last_print
        now = time.time()
        if not force and now - last_print < progress_seconds:
            return
        last_print = now
        counts = status_counts(states)
        eta = ""
        if finished:
            a, b = _time_model(finished)   # core-seconds of a run = a + b * particle-steps
            left = sum(a + b * r.cost for r in todo) + sum(
                max(0.0, a + b * r.cost - (now - t.start) * min(r.ranks, cores)) for t, r in active.values())
            eta = f", ~{_fmt_time(left / cores)} left"
        print(f"[{time.strftime('%H:%M:%S')}] {counts['done']}/{len(runs)} done, {counts['running']} running, "
              f"{counts['failed']} failed, {counts['pending']} pending; elapsed {_fmt_time(now - t0)}{eta}",
              file=out, flush=True)

    def launch(run, mode=None):
        attempt = Attempt(run.dir, run.ranks, "mpirun", mode)
        active[run.name] = (attempt, run)
        states[run.name] = ("running", "")

    try:
        write_manifest(sweep, runs, states)
        while (todo or active or waiting) and not stop:
            changed = False
            for run in list(waiting):
                if running_marker(run.dir) is None:
                    waiting.remove(run)
                    states[run.name] = run_state(run)
                    changed = True
                    if states[run.name][0] != "done":
                        todo.append(run)
            for name, (attempt, run) in list(active.items()):
                if attempt.poll() is None:
                    continue
                result = attempt.finish()
                del active[name]
                changed = True
                if result == "retry":
                    print(f"  {name}: could not resume; starting again", file=out, flush=True)
                    launch(run, "overwrite")
                    continue
                if result == "done":
                    finished.append((run.cost, (time.time() - attempt.start) * min(run.ranks, cores)))
                states[name] = run_state(run)
                if states[name][0] == "failed":
                    print(f"  {name}: FAILED: {states[name][1]}", file=out, flush=True)
            free = cores - sum(min(r.ranks, cores) for _, r in active.values())
            for run in list(todo):
                need = min(run.ranks, cores)
                if need <= free:
                    todo.remove(run)
                    launch(run)
                    free -= need
                    changed = True
            if changed:
                write_manifest(sweep, runs, states)
            report(force=changed)
            time.sleep(0.2)
        if stop:
            raise _Stop()
    except _Stop:
        print(f"sweep {sweep.name}: stopping {len(active)} running runs (signal {stop[0]}); "
              f"run again to resume them", file=out, flush=True)
        for attempt, _ in active.values():
            attempt.terminate()
        deadline = time.time() + 20
        while time.time() < deadline and any(a.poll() is None for a, _ in active.values()):
            time.sleep(0.1)
        for attempt, run in active.values():
            attempt.kill()
            attempt.finish(interrupted=True)
            states[run.name] = run_state(run)
        active.clear()
        write_manifest(sweep, runs, states)
        raise
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    states = {r.name: run_state(r) for r in runs}
    write_manifest(sweep, runs, states)
    counts = status_counts(states)
    print(f"sweep {sweep.name}: {counts['done']}/{len(runs)} done, {counts['failed']} failed, "
          f"{counts['running']} running elsewhere; {_fmt_time(time.time() - t0)}", file=out, flush=True)
    return states


# -------------------------------------------------------------------------------------------- slurm
def write_slurm(sweep, runs, states, opts):
    """sbatch scripts for the unfinished runs: one job array per rank count of single-node runs, one
    job per multi-node run (srun over its nodes), a submit.sh and a job that refreshes the manifest.
    Returns the list of files written."""
    d = sweep.out_dir / "slurm"
    (d / "logs").mkdir(parents=True, exist_ok=True)
    for old in list(d.glob("*.sbatch")) + list(d.glob("array_*.txt")):
        old.unlink()
    py = shlex.quote(sys.executable)
    rpn = opts["ranks_per_node"]
    todo = [r for r in runs if states[r.name][0] != "done"]
    single, multi = {}, []
    for r in todo:
        if r.ranks <= rpn:
            single.setdefault(r.ranks, []).append(r)
        else:
            multi.append(r)

    def header(job, nodes, ranks, extra):
        lines = ["#!/bin/bash", f"#SBATCH --job-name={job}"]
        for key in ("partition", "account"):
            if opts[key]:
                lines.append(f"#SBATCH --{key}={opts[key]}")
        lines += [f"#SBATCH --time={opts['time']}", f"#SBATCH --nodes={nodes}", f"#SBATCH --ntasks={ranks}"]
        if nodes > 1:
            lines.append(f"#SBATCH --ntasks-per-node={math.ceil(ranks / nodes)}")
        lines += extra + [f"#SBATCH {x}" for x in opts["sbatch"]]
        lines += [f"# sweep {sweep.name}, written by launch/sweep slurm {sweep.path}", "set -euo pipefail"]
        if opts["modules"]:
            lines.append("module load " + " ".join(shlex.quote(m) for m in opts["modules"]))
        lines += list(opts["setup"])
        return lines

    def exec_line(run_dir_expr, ranks):
        return (f"exec {py} -m mpisim.sweep exec {run_dir_expr} --ranks {ranks} "
                f"--launcher {shlex.quote(opts['launcher'])}")

    files, jobs = [], []
    chunks = []   # SLURM's default MaxArraySize is 1001: at most 1000 tasks per array
    for ranks, group in sorted(single.items()):
        parts = [group[i:i + MAX_ARRAY] for i in range(0, len(group), MAX_ARRAY)]
        chunks += [(ranks, part, f"r{ranks}" + (f"_{k + 1}" if len(parts) > 1 else ""))
                   for k, part in enumerate(parts)]
    for ranks, group, tag in chunks:
        lst = d / f"array_{tag}.txt"
        lst.write_text("".join(f"{r.dir}\n" for r in group))
        limit = f"%{opts['array_limit']}" if opts["array_limit"] else ""
        lines = header(f"{sweep.name}-{tag}", 1, ranks,
                       [f"#SBATCH --array=0-{len(group) - 1}{limit}",
                        f"#SBATCH --output={d}/logs/%x_%A_%a.out"])
        lines += [f"# {len(group)} runs of {ranks} rank(s), one array task each, listed in {lst.name}",
                  f'run_dir=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" {shlex.quote(str(lst))})',
                  exec_line('"$run_dir"', ranks)]
        path = d / f"array_{tag}.sbatch"
        path.write_text("\n".join(lines) + "\n")
        files += [lst, path]
        jobs.append(path)
    for r in multi:
        nodes = math.ceil(r.ranks / rpn)
        lines = header(f"{sweep.name}-{r.name}"[:120], nodes, r.ranks,
                       [f"#SBATCH --output={d}/logs/%x_%j.out"])
        lines += [f"# one run of {r.ranks} ranks on {nodes} nodes (N = {r.config.system.n})",
                  exec_line(shlex.quote(str(r.dir)), r.ranks)]
        path = d / f"run_{r.name}.sbatch"
        path.write_text("\n".join(lines) + "\n")
        files.append(path)
        jobs.append(path)
    refresh = d / "manifest.sbatch"
    refresh.write_text("\n".join(header(f"{sweep.name}-manifest", 1, 1, [f"#SBATCH --output={d}/logs/%x_%j.out"])
                                 + [f"exec {py} -m mpisim.sweep status {shlex.quote(str(sweep.path))}"]) + "\n")
    submit = d / "submit.sh"
    body = ["#!/bin/bash", f"# Submit the {len(todo)} unfinished runs of sweep {sweep.name}; the manifest is "
            "refreshed when they have all ended.", "set -euo pipefail", 'cd "$(dirname "$0")"', "ids=()"]
    body += [f"ids+=($(sbatch --parsable {p.name}))" for p in jobs]
    body += ['[ ${#ids[@]} -gt 0 ] && sbatch --parsable --dependency=afterany:$(IFS=:; echo "${ids[*]%%;*}") '
             'manifest.sbatch >/dev/null', 'echo "submitted ${#ids[@]} jobs: ${ids[*]}"']
    submit.write_text("\n".join(body) + "\n")
    submit.chmod(0o755)
    return files + [refresh, submit]


# ---------------------------------------------------------------------------------------------- cli
def build_parser():
    p = argparse.ArgumentParser(prog="launch/sweep", description="Plan, run and track parameter sweeps "
                                "of mpisim runs (docs/sweeps.md).")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name, help_):
        s = sub.add_parser(name, help=help_, description=help_)
        s.add_argument("sweep", help="the sweep file (TOML: [sweep], [base], [axes], [ranks], [slurm])")
        return s

    s = add("plan", "write one directory per run (config.toml) and the manifest")
    s.add_argument("--yes", action="store_true", help="accept more runs than sweep.max_runs")
    s = add("run", "run the unfinished runs here, packed onto the cores; resumes interrupted runs")
    s.add_argument("--yes", action="store_true", help="accept more runs than sweep.max_runs")
    s.add_argument("--cores", type=int, default=os.cpu_count() or 1,
                   help=f"cores to use (default: all, {os.cpu_count()})")
    s.add_argument("--progress-seconds", type=float, default=10.0,
                   help="print progress at least this often (default 10)")
    s.add_argument("--skip-failed", action="store_true", help="do not retry runs that failed before")
    s = add("slurm", "write sbatch scripts (job arrays, srun for multi-node runs) and the plan")
    s.add_argument("--yes", action="store_true", help="accept more runs than sweep.max_runs")
    s.add_argument("--partition", help="overrides slurm.partition")
    s.add_argument("--account", help="overrides slurm.account")
    s.add_argument("--time", help="wall time per job, e.g. 02:00:00 (overrides slurm.time)")
    s.add_argument("--ranks-per-node", type=int, help="overrides slurm.ranks_per_node")
    s.add_argument("--module", action="append", help="module to load (repeatable; replaces slurm.modules)")
    s.add_argument("--array-limit", type=int, help="array tasks running at once (overrides slurm.array_limit)")
    add("status", "print what is done, running, failed; refresh the manifest")
    s = sub.add_parser("exec", help="(used by the sbatch scripts) run one planned run directory")
    s.add_argument("run_dir")
    s.add_argument("--ranks", type=int, default=1)
    s.add_argument("--launcher", default="srun")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        if args.command == "exec":
            return cmd_exec(args)
        sweep = Sweep.load(args.sweep)
        return {"plan": cmd_plan, "run": cmd_run, "slurm": cmd_slurm, "status": cmd_status}[args.command](
            sweep, args)
    except SweepError as exc:
        print(f"sweep: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except _Stop:
        return 130


def cmd_plan(sweep, args):
    runs = sweep.plan(allow_many=args.yes)
    states = write_plan(sweep, runs)
    counts = status_counts(states)
    axes = ", ".join(f"{k} ({len(v)})" for k, v in sweep.axes) or "none"
    print(f"sweep {sweep.name}: {len(runs)} runs (axes: {axes}; {len(sweep.seeds)} seeds) in {sweep.out_dir}")
    print(f"  {counts['done']} done, {counts['pending']} pending, {counts['failed']} failed, "
          f"{counts['running']} running; manifest: {sweep.out_dir / MANIFEST}")
    by_ranks = {}
    for r in runs:
        by_ranks[r.ranks] = by_ranks.get(r.ranks, 0) + 1
    print("  ranks per run: " + ", ".join(f"{n} runs x {p}" for p, n in sorted(by_ranks.items())))
    return 0


def cmd_run(sweep, args):
    if args.cores < 1:
        raise SweepError(f"--cores: must be >= 1, got {args.cores}")
    runs = sweep.plan(allow_many=args.yes)
    states = execute(sweep, runs, args.cores, args.progress_seconds, retry_failed=not args.skip_failed,
                     states=write_plan(sweep, runs))
    failed = [name for name, st in states.items() if st[0] == "failed"]
    for name in failed:
        print(f"  failed: {name}: {states[name][1]}  (log: {sweep.out_dir / name / LOG})")
    return 1 if failed else 0


def cmd_slurm(sweep, args):
    opts = dict(sweep.slurm)
    for key in ("partition", "account", "time", "ranks_per_node", "array_limit"):
        if getattr(args, key) is not None:
            opts[key] = getattr(args, key)
    if args.module:
        opts["modules"] = args.module
    _check_slurm(opts, "command line")
    runs = sweep.plan(allow_many=args.yes)
    states = write_plan(sweep, runs)
    files = write_slurm(sweep, runs, states, opts)
    todo = sum(states[r.name][0] != "done" for r in runs)
    print(f"sweep {sweep.name}: {len(runs)} runs planned in {sweep.out_dir}, {todo} to submit")
    for f in files:
        if f.suffix == ".sbatch":
            print(f"  {f}")
    print(f"submit them all with:\n  {sweep.out_dir / 'slurm' / 'submit.sh'}")
    print(f"then follow with:\n  launch/sweep status {sweep.path}")
    return 0


def cmd_status(sweep, args):
    runs = sweep.plan(allow_many=True)
    states = {r.name: run_state(r) for r in runs}
    if sweep.out_dir.is_dir():
        write_manifest(sweep, runs, states)
    width = max(len(r.name) for r in runs)
    print(f"{'run':<{width}}  ranks  status   note")
    for r in runs:
        status, note = states[r.name]
        print(f"{r.name:<{width}}  {r.ranks:>5}  {status:<7}  {note}")
    counts = status_counts(states)
    print(f"sweep {sweep.name}: {counts['done']}/{len(runs)} done, {counts['running']} running, "
          f"{counts['failed']} failed, {counts['pending']} pending"
          + ("" if sweep.out_dir.is_dir() else " (not planned yet)"))
    return 0


def cmd_exec(args):
    """Run one planned run (a cluster job): skip it if done, resume it if interrupted, record failure."""
    run_dir = Path(args.run_dir).resolve()
    if not (run_dir / CONFIG).is_file():
        raise SweepError(f"{run_dir}: not a planned run directory (no {CONFIG})")
    if output_finished(run_dir / OUTPUT):
        print(f"{run_dir.name}: already done")
        return 0
    attempt = Attempt(run_dir, args.ranks, args.launcher)
    stop = []

    def on_signal(signum, frame):   # SLURM sends SIGTERM at the time limit: pass it on, keep the output
        stop.append(signum)
        attempt.terminate()

    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, on_signal)
    attempt.proc.wait()
    result = attempt.finish(interrupted=bool(stop))
    if result == "retry":
        attempt = Attempt(run_dir, args.ranks, args.launcher, "overwrite")
        attempt.proc.wait()
        result = attempt.finish(interrupted=bool(stop))
    print(f"{run_dir.name}: {result}")
    return 0 if result == "done" else 1


if __name__ == "__main__":
    sys.exit(main())
