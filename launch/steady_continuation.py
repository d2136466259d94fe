#!/usr/bin/env python
"""Do runs stopped as "steady" near phi_c absorb later? (issue 18; docs/results.md, "Steady-stop bias")

Each given run (a finished run directory with ``config.toml`` and ``run.h5``, stopped by
``run.stop_when_steady``, or active at its cap ``run.steps``: a drifting run to carry on) is carried on
without the steady stop to ``run.steps = --factor x`` its stop step (at least ``--min-steps`` and
``--cap-factor x`` its cap, at most ``--max-steps``), into ``OUT/<run name>/``: the original runs are never
touched. A run that kept its last state (``run.h5.ckpt``, run.keep_checkpoint) is copied there and carried
on from it (``mpisim resume --steps``: only the new steps cost); an older run is run again from its start
with the same config (same seed: the same trajectory, bitwise). A run whose continuation is already
complete is skipped; an interrupted one resumes from its checkpoint. ``--jobs`` runs that many at once.

``--in-bracket MANIFEST ...`` chooses the runs instead of a list (the protocol of the Fig. 5b studies at
N = 8000, docs/results.md): every run of one study (one family and step size, all its sizes) that did not
absorb, at a phi inside the absorption bracket of all sizes [phi_all_absorbed, phi_none_absorbed] (the
runs read with their continuations in OUT), and every run already continued there (reported, also once
the bracket has moved past it). Continuations that absorb can move the bracket up, so the choice is made
again until it holds no run left to carry on. ``--max-solid-fraction F`` leaves crystallized runs out of
both, as ``phic --max-solid-fraction F`` does.

Then, per run: where the original stopped, whether the continuation absorbed and when, and a check
that the continuation's activity series equals the original's up to the original stop step (the
same trajectory). Printed as a table; ``-o`` writes it as CSV.

SIGTERM or SIGINT stops it (the figure command's stop, a batch system's warning, Ctrl-C): no continuation
starts after it, the running ones are sent SIGTERM (they checkpoint: mpisim's stop_on_signals), the CSV of
an earlier call is left as it was, and it exits with 128 + the signal's number; the same command resumes.

    nice -n 10 launch/steady_continuation.py OUT RUN_DIR [RUN_DIR ...] --factor 10 --max-steps 200000
    launch/steady_continuation.py runs/fig5b-continued/sgd-eps0.05 --in-bracket runs/fig5b/sgd-eps0.05/*/manifest.tsv \
        --factor 1 --min-steps 1000000 --cap-factor 2.5 --max-steps 10000000 --jobs 2
"""
import argparse
import csv
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from analysis.errors import RunFileError
from analysis.fss import absorption_bracket
from analysis.io import load_run, load_runs
from studies.local import stopped_by_signal


#: the signal that stopped the carry-on (main's handler), and the continuations running (to pass it on)
_stop: list = []
_running: set = set()
_running_lock = threading.Lock()
#: a continuation that a stop ended or kept from starting (resumable: not a failure)
STOPPED = "stopped"


def _on_stop(signum, frame):
    _stop.append(signum)
    with _running_lock:
        for proc in _running:
            proc.send_signal(signal.SIGTERM)


def stop_step(run_dir: Path) -> tuple[int, str]:
    """(last step, why) of a finished run, from its log's last line: "stopped at step K: steady", or
    "active at step K" for a run that reached its cap (why "cap")."""
    lines = (run_dir / "run.log").read_text().strip().splitlines()
    last = lines[-1] if lines else ""
    if m := re.search(r"stopped at step (\d+): (\w+)", last):
        return int(m[1]), m[2]
    if m := re.search(r"active at step (\d+)", last):
        return int(m[1]), "cap"
    raise SystemExit(f"steady_continuation: {run_dir}/run.log does not end with 'stopped at step K: why' "
                     "or 'active at step K'")


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return repr(v)


def write_config(cfg: dict, path: Path) -> None:
    path.write_text("".join(f"[{sec}]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in body.items()) + "\n"
                            for sec, body in cfg.items()))


def runs_in_bracket(manifests, out: Path, max_solid_fraction: float | None = None
                    ) -> tuple[list[Path], tuple[float, float]]:
    """The run directories of ``--in-bracket`` and the bracket [lo, hi] they were chosen in: every run of
    the manifests at lo <= phi <= hi that did not absorb, and every run with a finished continuation in
    ``out`` (to report it, also once the bracket has moved past it). With ``max_solid_fraction``, a run
    with more of its particles solid-like in its last snapshot is a crystal: left out of the bracket's
    counts and never carried on, as ``phic --max-solid-fraction`` leaves it out (analysis/activity.py)."""
    runs = load_runs(manifests, continued=out)
    if max_solid_fraction is not None:
        from analysis.crystal import measure_run as crystallinity
        runs = [r for r in runs if crystallinity(r).solid_fraction <= max_solid_fraction]
    families = {r.params.key(exclude=("seed", "n", "phi")) for r in runs}
    if len(families) != 1:
        raise ValueError(f"--in-bracket needs the manifests of one study (one family and step size, every N); "
                         f"these hold {len(families)}")
    points: dict = {}
    for r in runs:
        pt = points.setdefault((r.params.n, r.params.phi), {"n": r.params.n, "phi": r.params.phi,
                                                            "n_seeds": 0, "n_absorbed": 0})
        pt["n_seeds"] += 1
        pt["n_absorbed"] += bool(r.absorbed)
    br = absorption_bracket(list(points.values()))
    lo, hi = br["phi_all_absorbed"], br["phi_none_absorbed"]
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"no absorption bracket in these runs (phi where every run absorbed: {lo}, above it "
                         f"where none did: {hi}); name the runs to carry on instead")
    # the largest systems first, as launch/sweep starts them: the last runs of a round are the short ones
    chosen = [(r.continues or r.path).parent for r in sorted(runs, key=lambda r: -r.params.n)
              if r.continues is not None or (lo <= r.params.phi <= hi and not r.absorbed)]
    return chosen, (lo, hi)


def carry_on(src: Path, out: Path, a) -> dict | str | None:
    """Carry one run on (or find its continuation complete) and compare it with its original: its row
    (None if the continuation failed, STOPPED if a stop signal ended it or came before it started)."""
    k_stop, why = stop_step(src)
    cfg = tomllib.loads((src / "config.toml").read_text())
    cap = cfg["run"]["steps"]
    target = int(min(max(a.factor * k_stop, a.min_steps, a.cap_factor * cap), a.max_steps))
    cfg["run"].update(steps=target, stop_when_steady=False)
    cfg["output"]["path"] = "run.h5"
    dst = out / src.name
    dst.mkdir(exist_ok=True)
    write_config(cfg, dst / "config.toml")
    h5, log = dst / "run.h5", dst / "run.log"
    done = log.exists() and re.search(r"(stopped at step \d+|active at step \d+)", log.read_text() or "")
    cpu = math.nan
    if not done:
        if _stop:
            return STOPPED
        cmd = [a.mpisim, "run", str(dst / "config.toml"), "-o", str(h5), "--quiet"]
        if not h5.exists() and (src / "run.h5.ckpt").exists():
            shutil.copy2(src / "run.h5", h5)
            shutil.copy2(src / "run.h5.ckpt", dst / "run.h5.ckpt")
        if (dst / "run.h5.ckpt").exists():
            # (a copied finished run, or an interrupted continuation: the same command)
            cmd = [a.mpisim, "resume", str(h5), "--quiet", "--steps", str(target),
                   "--set", "run.stop_when_steady=false"]
        with open(log, "a") as fh:
            fh.write(f"# {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} {' '.join(cmd)}\n")
            fh.flush()
            proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
            with _running_lock:
                _running.add(proc)
                if _stop:       # the stop came while it started (mpisim keeps an early SIGTERM)
                    proc.send_signal(signal.SIGTERM)
            # wait4: this child's own CPU time, also when --jobs runs several at once
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            with _running_lock:
                _running.discard(proc)
        # Ctrl-C reaches the children too: one may end by its SIGINT (130) before the forwarded SIGTERM
        if _stop and stopped_by_signal(proc.returncode):
            return STOPPED
        if proc.returncode != 0:
            print(f"steady_continuation: {dst} failed (exit {proc.returncode}); see {log}", file=sys.stderr)
            return None
        cpu = usage.ru_utime + usage.ru_stime
    orig, cont = load_run(src / "run.h5"), load_run(h5)
    (ko, fo), (kc, fc) = orig.activity(), cont.activity()
    upto = kc <= ko[-1]
    same = bool(np.array_equal(kc[upto], ko) and np.array_equal(fc[upto], fo))
    absorbed = cont.absorbed
    p = orig.params
    return {"n": p.n, "phi": p.phi, "seed": p.seed, "stop_step": k_stop, "stop_reason": why,
            "continued_to": int(kc[-1]), "absorbed": absorbed,
            "absorbed_step": cont.absorbed_step if absorbed else "",
            "f_a_at_stop": float(fo[-1]),
            "f_a_last_half": float(fc[kc >= kc[-1] / 2].mean()),
            "same_trajectory_to_stop": same, "cpu_children_s": round(cpu, 1),
            "run": src.name}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", help="directory of the continuations")
    ap.add_argument("runs", nargs="*", help="finished run directories (config.toml, run.h5, run.log)")
    ap.add_argument("--in-bracket", nargs="+", metavar="MANIFEST",
                    help="instead of RUN_DIRs: the runs of one study's manifests that did not absorb, inside the "
                         "absorption bracket of all sizes (chosen again until none is left)")
    ap.add_argument("--max-solid-fraction", type=float, default=None, metavar="F",
                    help="with --in-bracket: leave out crystallized runs (more than F of the particles solid-like "
                         "in the last snapshot), as phic --max-solid-fraction does (default: crystallinity not read)")
    ap.add_argument("--factor", type=float, default=10.0, help="continue to this multiple of the stop step")
    ap.add_argument("--min-steps", type=int, default=0, help="... but at least this many steps")
    ap.add_argument("--cap-factor", type=float, default=0.0,
                    help="... and at least this multiple of the run's cap run.steps (default 0: no such bound)")
    ap.add_argument("--max-steps", type=int, default=200000, help="... and at most this many")
    ap.add_argument("--jobs", type=int, default=1, help="continuations run at once (default 1)")
    ap.add_argument("--mpisim", default="mpisim", help="the mpisim program (default: on PATH)")
    ap.add_argument("-o", "--output", help="CSV of the table")
    a = ap.parse_args(argv)
    if bool(a.runs) == bool(a.in_bracket):
        ap.error("give either RUN_DIRs or --in-bracket MANIFEST ..., not both and not neither")
    if a.jobs < 1:
        ap.error(f"--jobs must be >= 1, got {a.jobs}")
    if a.max_solid_fraction is not None and not (a.in_bracket and 0.0 <= a.max_solid_fraction < 1.0):
        ap.error(f"--max-solid-fraction needs --in-bracket and a value in [0, 1), got {a.max_solid_fraction}")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    rows: dict = {}
    todo = list(map(Path, a.runs))
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _on_stop)
    while not _stop:
        if a.in_bracket:
            try:
                todo, (lo, hi) = runs_in_bracket(a.in_bracket, out, a.max_solid_fraction)
            except (ValueError, RunFileError) as err:
                ap.error(str(err))
            todo = [d for d in todo if d not in rows]
            print(f"# bracket [{lo:.6g}, {hi:.6g}]: {len(todo)} runs to carry on", flush=True)
        if not todo:
            break
        with ThreadPoolExecutor(a.jobs) as pool:
            for src, row in zip(todo, pool.map(lambda d: carry_on(d, out, a), todo)):
                if row is STOPPED:
                    continue
                rows[src] = row
                if row is None:
                    continue
                if sum(r is not None for r in rows.values()) == 1:
                    print("\t".join(row), flush=True)
                print("\t".join(str(v) for v in row.values()), flush=True)
        if not a.in_bracket:
            break
    done = [r for r in rows.values() if r is not None]
    if a.output and done and not _stop:
        with open(a.output, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(done[0]))
            w.writeheader()
            w.writerows(done)
    if _stop:
        print(f"steady_continuation: stopped by {signal.Signals(_stop[0]).name}; the running continuations "
              "checkpointed, the same command resumes them", file=sys.stderr)
        return 128 + _stop[0]
    return 1 if len(done) < len(rows) else 0


if __name__ == "__main__":
    sys.exit(main())
