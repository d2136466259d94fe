"""Running planned runs on this machine: ``launch/sweep run`` packs them onto the cores (docs/sweeps.md,
"Running here"), and every attempt of a run (here or in a cluster job) is an ``Attempt``: the launched
process, its log, its RUNNING marker and the recorded outcome.
"""
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from mpisim.io import checkpoint_path

from .status import (CONFIG, DONE, FAILED, FAILED_MARKER, LOG, MANIFEST, OUTPUT, PENDING, RUNNING,
                     RUNNING_MARKER, claim, output_finished, run_state, running_marker, status_counts,
                     write_manifest)

EXIT_USAGE = 2      # mpisim's status for a user mistake (e.g. nothing to resume)
#: the outcomes of an attempt
ATTEMPT_DONE, ATTEMPT_FAILED, ATTEMPT_INTERRUPTED, ATTEMPT_RETRY = "done", "failed", "interrupted", "retry"
#: mpisim's exit statuses when a signal stopped it after a checkpoint (128 + signal number)
STOPPED_STATUSES = (128 + signal.SIGTERM, 128 + signal.SIGUSR1, 128 + signal.SIGINT)


def mpisim_command():
    """The words that start mpisim: the console script next to this Python, else ``python -m mpisim``."""
    exe = Path(sys.executable).parent / "mpisim"
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "mpisim"]


def mpirun_words(ranks, oversubscribe=True):
    """``mpirun -n P`` (Open MPI's flags: oversubscribed on a small machine, allowed as root)."""
    flags = (["--oversubscribe"] if oversubscribe else []) + (["--allow-run-as-root"] if os.geteuid() == 0 else [])
    return ["mpirun", "-n", str(ranks), *flags]


def local_prefix(ranks):
    """The launcher words of a run here: none for one rank (mpisim starts MPI by itself), else mpirun."""
    return [] if ranks == 1 else mpirun_words(ranks)


def run_command(run_dir, mode, prefix=()):
    """[launcher words] mpisim run config.toml -o run.h5 --quiet [--resume | --overwrite]."""
    run_dir = Path(run_dir)
    cmd = list(prefix) + mpisim_command() + [
        "run", str(run_dir / CONFIG), "-o", str(run_dir / OUTPUT), "--quiet"]
    return cmd + {"fresh": [], "resume": ["--resume"], "overwrite": ["--overwrite"]}[mode]


def _child_preexec():
    """A run's preexec: SIGTERM if the driver dies (even by SIGKILL), so no run is left orphaned; and the
    driver's nice for the run's new session (``_inherit_nice``)."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    _inherit_nice()


def _inherit_nice(autogroup="/proc/self/autogroup"):
    """With ``kernel.sched_autogroup_enabled = 1`` the scheduler shares the CPU between sessions first, and
    each run is a session of its own (start_new_session), so ``nice -n 19 launch/sweep run`` would not
    lower the runs' share: set the run's autogroup nice to the process's nice (raising it needs no
    privilege). A kernel without autogroups has no such file: nothing to do."""
    niceness = os.nice(0)
    if niceness <= 0:
        return
    try:
        with open(autogroup, "w") as fh:
            fh.write(f"{niceness}\n")
    except OSError:
        pass


#: lines of launchers and MPI libraries that say that something failed, never what
_NOISE = re.compile(r"^(srun: |slurmstepd: |mpirun |mpiexec |-{10,}|\*\*\* |\[[^]]*:\d+\] |Primary job|"
                    r"Process name|Exit code|NOTE: invoking MPI_ABORT|MPI_ABORT was invoked|You may or may not|"
                    r"with errorcode|exiting improperly|Traceback |File \")")
_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b(: .*)?$")


def failure_cause(lines):
    """The part of a failed run's output (a list of lines) that says why: mpisim's own error line (the
    last one), else the last Python exception line, else the first paragraph of the MPI library's first
    message between dashed rules (how Open MPI explains), else the last line that is not a launcher's
    generic abort line."""
    lines = [ln.strip() for ln in lines]
    own = [ln for ln in lines if ln.startswith("mpisim:") and ("error" in ln or "failed" in ln)]
    if own:
        return own[-1]
    exc = [ln for ln in lines if _EXCEPTION.match(ln)]
    if exc:
        return exc[-1]
    for i, ln in enumerate(lines):
        if re.fullmatch(r"-{10,}", ln) and i + 1 < len(lines) and lines[i + 1] and not _NOISE.match(lines[i + 1]):
            paragraph = []
            for text in lines[i + 1:]:
                if not text or re.fullmatch(r"-{10,}", text):
                    break
                paragraph.append(text)
            return " ".join(paragraph)
    rest = [ln for ln in lines if ln and not _NOISE.match(ln)]
    return rest[-1] if rest else next((ln for ln in reversed(lines) if ln), "no output")


def stopped_by_signal(rc):
    """Whether an exit status says that a signal stopped the run (mpisim after a checkpoint: 128 +
    signal; killed by SIGTERM/SIGINT/SIGUSR1: negative) rather than that it failed."""
    return rc in STOPPED_STATUSES or rc in (-signal.SIGTERM, -signal.SIGINT, -signal.SIGUSR1)


class Attempt:
    """One launched process of a run (rank-local to the driver): its Popen, log and mode.

    prefix: the launcher words (``local_prefix``; in a cluster job ``slurm.job_prefix``); mode: "fresh",
    "resume" or "overwrite" (default: from what the run directory holds).
    """

    def __init__(self, run_dir, prefix=(), mode=None):
        self.dir, self.prefix = Path(run_dir), list(prefix)
        output = self.dir / OUTPUT
        if mode is None:
            mode = "fresh" if not output.exists() else (
                "resume" if Path(checkpoint_path(output)).is_file() else "overwrite")
        self.mode = mode
        self.cmd = run_command(self.dir, mode, self.prefix)
        (self.dir / FAILED_MARKER).unlink(missing_ok=True)
        log = self.dir / LOG
        self.log_start = log.stat().st_size if log.exists() else 0
        self.start = time.time()
        with open(log, "a") as fh:
            fh.write(f"# {time.strftime('%Y-%m-%d %H:%M:%S')} on {socket.gethostname()}: "
                     f"{shlex.join(self.cmd)}\n")
        self._log = open(log, "a")
        self.proc = subprocess.Popen(self.cmd, cwd=self.dir, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True,
                                     preexec_fn=_child_preexec)
        marker = {"host": socket.gethostname(), "pid": self.proc.pid, "driver": os.getpid(),
                  "start": time.strftime("%Y-%m-%dT%H:%M:%S"), "mode": mode,
                  "job": os.environ.get("SLURM_JOB_ID", "")}
        (self.dir / RUNNING_MARKER).write_text(json.dumps(marker) + "\n")

    def poll(self):
        return self.proc.poll()

    def stop(self):
        """Ask the run to checkpoint and stop (mpisim's stop_on_signals): SIGUSR1 to its process group,
        which mpirun and srun forward to the ranks (on SIGTERM, mpirun kills its ranks and srun cancels
        the step with SIGKILL: measured with Open MPI 4.1.4 and SLURM 22.05)."""
        try:
            os.killpg(self.proc.pid, signal.SIGUSR1)
        except ProcessLookupError:
            pass

    def kill(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def finish(self, interrupted=False):
        """Record the outcome: ATTEMPT_DONE, ATTEMPT_FAILED, ATTEMPT_INTERRUPTED (by a signal: the run
        stays pending and is resumed), or ATTEMPT_RETRY (the resume was refused: start again)."""
        rc = self.proc.wait()
        self._log.close()
        (self.dir / RUNNING_MARKER).unlink(missing_ok=True)
        if rc == 0 and output_finished(self.dir / OUTPUT):
            return ATTEMPT_DONE
        if interrupted or stopped_by_signal(rc):
            return ATTEMPT_INTERRUPTED
        if self.mode == "resume" and rc == EXIT_USAGE:
            return ATTEMPT_RETRY   # e.g. no checkpoint to resume from: start again from scratch
        (self.dir / FAILED_MARKER).write_text(self.error_text(rc) + "\n")
        return ATTEMPT_FAILED

    def error_text(self, rc):
        """``exit status RC: CAUSE`` (failure_cause of this attempt's part of run.log)."""
        try:
            with open(self.dir / LOG) as fh:
                fh.seek(self.log_start)
                lines = [ln for ln in fh.read().splitlines() if not ln.startswith("# ")]
        except OSError:
            lines = []
        detail = failure_cause(lines).strip()
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
    todo = [r for r in runs if states[r.name][0] == PENDING or
            (retry_failed and states[r.name][0] == FAILED)]
    # Runs another driver on this host is running: wait for them (and take them over if it dies).
    # Runs on another host (cluster jobs) are left alone.
    here = socket.gethostname()
    elsewhere = [r for r in runs if states[r.name][0] == RUNNING]
    waiting = [r for r in elsewhere if (running_marker(r.dir) or {}).get("host") == here]
    remote = len(elsewhere) > len(waiting)
    todo.sort(key=lambda r: (-min(r.ranks, cores), -r.cost))
    skipped = sum(states[r.name][0] == DONE for r in runs)
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
        print(f"[{time.strftime('%H:%M:%S')}] {counts[DONE]}/{len(runs)} done, {counts[RUNNING]} running, "
              f"{counts[FAILED]} failed, {counts[PENDING]} pending; elapsed {_fmt_time(now - t0)}{eta}",
              file=out, flush=True)

    def launch(run, mode=None):
        attempt = Attempt(run.dir, local_prefix(run.ranks), mode)
        active[run.name] = (attempt, run)
        states[run.name] = (RUNNING, "")

    try:
        write_manifest(sweep, runs, states)
        while (todo or active or waiting) and not stop:
            changed = False
            for run in list(waiting):
                if running_marker(run.dir) is None:
                    waiting.remove(run)
                    states[run.name] = run_state(run)
                    changed = True
                    if states[run.name][0] != DONE:
                        todo.append(run)
            for name, (attempt, run) in list(active.items()):
                if attempt.poll() is None:
                    continue
                result = attempt.finish()
                del active[name]
                changed = True
                if result == ATTEMPT_RETRY:
                    print(f"  {name}: could not resume; starting again", file=out, flush=True)
                    launch(run, "overwrite")
                    continue
                if result == ATTEMPT_DONE:
                    finished.append((run.cost, (time.time() - attempt.start) * min(run.ranks, cores)))
                states[name] = run_state(run)
                if states[name][0] == FAILED:
                    print(f"  {name}: FAILED: {states[name][1]}", file=out, flush=True)
            free = cores - sum(min(r.ranks, cores) for _, r in active.values())
            for run in list(todo):
                need = min(run.ranks, cores)
                if need <= free:
                    todo.remove(run)
                    changed = True
                    # another driver on this sweep may have run or started it since the plan
                    state = run_state(run)
                    startable = state[0] in (PENDING, FAILED)
                    if startable and claim(run.dir):
                        launch(run)
                        free -= need
                        continue
                    if startable:                      # the claim was lost: started elsewhere just now
                        state = run_state(run)
                    states[run.name] = state
                    if state[0] == RUNNING:
                        waiting.append(run)
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
            attempt.stop()
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
    print(f"sweep {sweep.name}: {counts[DONE]}/{len(runs)} done, {counts[FAILED]} failed, "
          f"{counts[RUNNING]} running elsewhere; {_fmt_time(time.time() - t0)}", file=out, flush=True)
    return states
