"""The state of a planned run, read from its directory (docs/sweeps.md, "What plan writes"), and the
manifest derived from it.

A run directory holds ``config.toml`` (the full config), ``run.h5`` (the output; finished when its
provenance ``end_time`` is set), ``RUNNING`` (JSON: host, pid of the launched process, while it runs),
``FAILED`` (the error of the last attempt) and ``run.log`` (everything it printed). The directory is the
only state a local driver, cluster jobs and ``status`` share; a driver takes a run by creating its
``RUNNING`` marker exclusively (:func:`claim`), so two drivers on one sweep never start the same run.
"""
import json
import os
import re
import socket
import time
from pathlib import Path

from mpisim.config import tomllib
from mpisim.io import checkpoint_path, output_finished

MANIFEST = "manifest.tsv"
OUTPUT = "run.h5"
CONFIG = "config.toml"
LOG = "run.log"
RUNNING_MARKER = "RUNNING"
FAILED_MARKER = "FAILED"

# The statuses of a run, written to the manifest's status column; analysis.io reads only DONE rows.
DONE, RUNNING, FAILED, PENDING = "done", "running", "failed", "pending"
STATUSES = (DONE, RUNNING, FAILED, PENDING)
#: columns always in the manifest (after name, path, status, ranks): column -> key of the resolved config
#: (by full key: structure_factor.steps must not fill the steps column)
PARAM_COLUMNS = {"scheme": "dynamics.scheme", "dim": "system.dim", "n": "system.n", "phi": "system.phi",
                 "kick_size": "dynamics.kick_size", "learning_rate": "dynamics.learning_rate",
                 "batch_fraction": "dynamics.batch_fraction", "potential": "dynamics.potential",
                 "seed": "system.seed", "steps": "run.steps"}

__all__ = ["MANIFEST", "OUTPUT", "CONFIG", "LOG", "RUNNING_MARKER", "FAILED_MARKER", "DONE", "RUNNING",
           "FAILED", "PENDING", "STATUSES", "output_finished", "running_marker", "run_state",
           "status_counts", "write_manifest", "config_differs"]


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _dead_here(info):
    """Whether a marker's process ran on this host and is gone (killed without cleaning up)."""
    return info.get("host") == socket.gethostname() and not _pid_alive(int(info.get("pid", 0)))


def running_marker(run_dir):
    """The RUNNING marker's content if it belongs to a live process (any on another host), else None."""
    marker = Path(run_dir) / RUNNING_MARKER
    try:
        info = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    return None if _dead_here(info) else info


def claim(run_dir):
    """Take a run for this process: create its RUNNING marker exclusively (O_EXCL), so that of two drivers
    on the same sweep only one starts it. A marker of a dead process on this host is removed first.
    Returns False if another process holds the run."""
    marker = Path(run_dir) / RUNNING_MARKER
    try:
        if _dead_here(json.loads(marker.read_text())):
            marker.unlink(missing_ok=True)
    except (OSError, ValueError):
        pass   # no marker, or one being written by its owner: the exclusive create decides
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                             "start": time.strftime("%Y-%m-%dT%H:%M:%S")}) + "\n")
    return True


def run_state(run):
    """(status, note) of a planned run: DONE, RUNNING, FAILED (note: the error) or PENDING."""
    marker = running_marker(run.dir)
    if marker is not None:
        return RUNNING, f"on {marker.get('host', '?')} since {marker.get('start', '?')}"
    if output_finished(run.output):
        return DONE, ""
    failed = run.dir / FAILED_MARKER
    if failed.is_file():
        why = failed.read_text().strip()
        return FAILED, why.splitlines()[0] if why else FAILED
    if run.output.exists():
        return PENDING, "interrupted: partial output" + (
            " and a checkpoint" if Path(checkpoint_path(run.output)).is_file() else "")
    return PENDING, ""


def status_counts(states):
    """{status: number of runs} over STATUSES."""
    return {s: sum(v[0] == s for v in states.values()) for s in STATUSES}


def write_manifest(sweep, runs, states):
    """Write ``manifest.tsv`` (atomically): name, path, status, ranks, parameters, error."""
    columns = dict(PARAM_COLUMNS)          # column -> "section.key"
    for key, _ in sweep.axes:               # a swept key by its bare name, or dotted if that is taken
        bare = key.split(".")[1]
        if key not in columns.values():
            columns[bare if bare not in columns else key] = key
    header = ["name", "path", "status", "ranks", *columns, "error"]
    lines = ["\t".join(header)]
    for run in runs:
        status, note = states[run.name]
        config = run.config.to_dict()
        row = {"name": run.name, "path": f"{run.name}/{OUTPUT}", "status": status, "ranks": run.ranks,
               "error": note if status == FAILED else ""}
        for col, key in columns.items():
            section, field = key.split(".")
            row[col] = config[section].get(field, "")
        lines.append("\t".join(_cell(row[c]) for c in header))
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


def config_differs(path, config):
    """True if the config file at ``path`` sets a key of ``config`` to another value (keys only one of
    them knows, e.g. added by a newer mpisim with their defaults, do not count)."""
    try:
        old = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return True
    new = config.to_dict()
    return any(key in old.get(section, {}) and old[section][key] != value
               for section, table in new.items() for key, value in table.items())
