"""Studies on a SLURM cluster: ``launch/sweep slurm`` writes sbatch scripts for the unfinished runs of a
plan, and every job runs ``python -m studies exec`` (docs/sweeps.md, "On a SLURM cluster").

What a job needs from the cluster is decided in the job, not when the scripts are written: a run of
one rank starts mpisim without any MPI launcher; a run of several ranks uses ``srun --mpi=pmix`` when
``srun --mpi=list`` offers PMIx, else ``mpirun`` inside the allocation (Open MPI and MPICH read SLURM's
allocation), unless ``slurm.launcher`` names one. With ``--signal=B:TERM@S`` SLURM warns the job S
seconds before its time limit; the job passes that on to the run, which writes a checkpoint and stops,
and the next submission resumes it where it stopped.
"""
import math
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

from .local import ATTEMPT_DONE, ATTEMPT_RETRY, Attempt, mpirun_words
from .plan import SweepError
from .status import CONFIG, DONE, OUTPUT, output_finished

MAX_ARRAY = 1000    # SLURM's default MaxArraySize is 1001: at most 1000 tasks per array


def srun_mpi_plugins():
    """The MPI plugin types this cluster's srun offers (``srun --mpi=list``), e.g. {"none", "pmi2",
    "pmix", "pmix_v4"}; empty without srun."""
    try:
        proc = subprocess.run(["srun", "--mpi=list"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return set()
    text = proc.stdout + proc.stderr
    return set(re.findall(r"\b(none|pmi2|pmix(?:_v\d+)?|cray_shasta|openmpi|mpich\w*)\b", text))


def job_prefix(ranks, launcher="auto"):
    """The launcher words of a run of ``ranks`` ranks inside a job: none for one rank; for "auto",
    ``srun --mpi=pmix -n P`` if srun offers PMIx, else ``mpirun -n P``; else ``launcher -n P``."""
    if ranks == 1:
        return []
    if launcher == "auto":
        if "pmix" in srun_mpi_plugins():
            return ["srun", "--mpi=pmix", "-n", str(ranks)]
        return mpirun_words(ranks, oversubscribe=False)
    if launcher == "mpirun":
        return mpirun_words(ranks, oversubscribe=False)
    return shlex.split(launcher) + ["-n", str(ranks)]


def exec_runs(run_dirs, ranks, launcher="auto", out=sys.stdout):
    """Run planned run directories one after the other (a cluster job's work): skip those done, resume
    the interrupted ones, record failures. On SIGTERM/SIGINT/SIGUSR1 (SLURM's warning before the time
    limit, or scancel) the current run is asked to checkpoint and stop, and the rest are left pending.
    Returns 0 if every run is done, else 1."""
    prefix = job_prefix(ranks, launcher)
    for d in run_dirs:
        if not (Path(d) / CONFIG).is_file():
            raise SweepError(f"{d}: not a planned run directory (no {CONFIG})")
    print(f"{len(run_dirs)} run(s) of {ranks} rank(s); launcher: {shlex.join(prefix) or 'none'}",
          file=out, flush=True)
    stop, current = [], []

    def on_signal(signum, frame):
        stop.append(signum)
        if current:
            current[-1].stop()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)}
    all_done = True
    try:
        for run_dir in map(Path, run_dirs):
            run_dir = run_dir.resolve()
            if output_finished(run_dir / OUTPUT):
                print(f"{run_dir.name}: already {DONE}", file=out, flush=True)
                continue
            if stop:
                print(f"{run_dir.name}: not started (signal {stop[0]})", file=out, flush=True)
                all_done = False
                continue
            result = _attempt(run_dir, prefix, None, current, stop)
            if result == ATTEMPT_RETRY and not stop:
                result = _attempt(run_dir, prefix, "overwrite", current, stop)
            print(f"{run_dir.name}: {result}", file=out, flush=True)
            all_done &= result == ATTEMPT_DONE
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    return 0 if all_done else 1


def _attempt(run_dir, prefix, mode, current, stop):
    attempt = Attempt(run_dir, prefix, mode)
    current.append(attempt)
    if stop:                  # the signal came while the attempt was starting
        attempt.stop()
    attempt.proc.wait()
    current.pop()
    return attempt.finish(interrupted=bool(stop))


def write_slurm(sweep, runs, states, opts):
    """sbatch scripts for the unfinished runs: one job array per rank count of single-node runs
    (``runs_per_task`` runs one after the other in each array task), one job per multi-node run, a
    submit.sh and a job that refreshes the manifest. Returns the list of files written."""
    d = sweep.out_dir / "slurm"
    (d / "logs").mkdir(parents=True, exist_ok=True)
    for old in list(d.glob("*.sbatch")) + list(d.glob("array_*.txt")):
        old.unlink()
    py = shlex.quote(sys.executable)
    code = shlex.quote(str(Path(__file__).resolve().parents[1]))
    rpn, per_task = opts["ranks_per_node"], opts["runs_per_task"]
    todo = [r for r in runs if states[r.name][0] != DONE]
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
        lines += [f"# sweep {sweep.name}, written by launch/sweep slurm {sweep.path}", "set -euo pipefail",
                  f"export PYTHONPATH={code}${{PYTHONPATH:+:$PYTHONPATH}}   # the code that planned the sweep"]
        if opts["modules"]:
            lines.append("module load " + " ".join(shlex.quote(m) for m in opts["modules"]))
        lines += list(opts["setup"])
        return lines

    # SIGTERM to the batch shell (which execs into the exec command) S seconds before the time limit
    warn = [f"#SBATCH --signal=B:TERM@{opts['signal_seconds']}"] if opts["signal_seconds"] else []
    exec_words = f"exec {py} -m studies exec --ranks {{ranks}} --launcher {shlex.quote(opts['launcher'])}"

    files, jobs, chunks = [], [], []
    for ranks, group in sorted(single.items()):
        size = MAX_ARRAY * per_task
        parts = [group[i:i + size] for i in range(0, len(group), size)]
        chunks += [(ranks, part, f"r{ranks}" + (f"_{k + 1}" if len(parts) > 1 else ""))
                   for k, part in enumerate(parts)]
    for ranks, group, tag in chunks:
        lst = d / f"array_{tag}.txt"
        lst.write_text("".join(f"{r.dir}\n" for r in group))
        tasks = math.ceil(len(group) / per_task)
        limit = f"%{opts['array_limit']}" if opts["array_limit"] else ""
        lines = header(f"{sweep.name}-{tag}", 1, ranks,
                       [f"#SBATCH --array=0-{tasks - 1}{limit}", f"#SBATCH --output={d}/logs/%x_%A_%a.out"]
                       + warn)
        lines += [f"# {len(group)} runs of {ranks} rank(s) listed in {lst.name}, {per_task} per array task "
                  f"(task i: lines {per_task} i + 1 .. {per_task} (i + 1))",
                  exec_words.format(ranks=ranks) + f" --list {shlex.quote(str(lst))} "
                  f'--task "$SLURM_ARRAY_TASK_ID" --per-task {per_task}']
        path = d / f"array_{tag}.sbatch"
        path.write_text("\n".join(lines) + "\n")
        files += [lst, path]
        jobs.append(path)
    for r in multi:
        nodes = math.ceil(r.ranks / rpn)
        lines = header(f"{sweep.name}-{r.name}"[:120], nodes, r.ranks,
                       [f"#SBATCH --output={d}/logs/%x_%j.out"] + warn)
        lines += [f"# one run of {r.ranks} ranks on {nodes} nodes (N = {r.config.system.n})",
                  exec_words.format(ranks=r.ranks) + f" {shlex.quote(str(r.dir))}"]
        path = d / f"run_{r.name}.sbatch"
        path.write_text("\n".join(lines) + "\n")
        files.append(path)
        jobs.append(path)
    refresh = d / "manifest.sbatch"
    refresh.write_text("\n".join(header(f"{sweep.name}-manifest", 1, 1, [f"#SBATCH --output={d}/logs/%x_%j.out"])
                                 + [f"exec {py} -m studies status {shlex.quote(str(sweep.path))}"]) + "\n")
    submit = d / "submit.sh"
    body = ["#!/bin/bash", f"# Submit the {len(todo)} unfinished runs of sweep {sweep.name}; the manifest is "
            "refreshed when they have all ended.", "set -euo pipefail", 'cd "$(dirname "$0")"', "ids=()"]
    body += [f"ids+=($(sbatch --parsable {p.name}))" for p in jobs]
    body += ['[ ${#ids[@]} -gt 0 ] && sbatch --parsable --dependency=afterany:$(IFS=:; echo "${ids[*]%%;*}") '
             'manifest.sbatch >/dev/null', 'echo "submitted ${#ids[@]} jobs: ${ids[*]}"']
    submit.write_text("\n".join(body) + "\n")
    submit.chmod(0o755)
    return files + [refresh, submit]


def task_runs(list_file, task, per_task):
    """The run directories of array task ``task``: lines per_task * task + 1 .. per_task * (task + 1)."""
    lines = [ln.strip() for ln in Path(list_file).read_text().splitlines() if ln.strip()]
    chosen = lines[per_task * task: per_task * (task + 1)]
    if not chosen:
        raise SweepError(f"{list_file}: array task {task} has no runs ({len(lines)} runs, {per_task} per task)")
    return chosen
