#!/usr/bin/env python
"""Do runs stopped as "steady" near phi_c absorb later? (issue 18; docs/results.md, "Steady-stop bias")

Each given run (a finished run directory with ``config.toml`` and ``run.h5``, stopped by
``run.stop_when_steady``, or active at its cap ``run.steps``: a drifting run to carry on) is carried on
without the steady stop to ``run.steps = --factor x`` its stop step (at least ``--min-steps``), into
``OUT/<run name>/``: the original runs are never touched. A run that kept its last state
(``run.h5.ckpt``, run.keep_checkpoint) is copied there and carried on from it (``mpisim resume --steps``:
only the new steps cost); an older run is run again from its start with the same config (same seed:
the same trajectory, bitwise). A run whose continuation is already complete is skipped; an interrupted
one resumes from its checkpoint.

Then, per run: where the original stopped, whether the continuation absorbed and when, and a check
that the continuation's activity series equals the original's up to the original stop step (the
same trajectory). Printed as a table; ``-o`` writes it as CSV.

    nice -n 10 launch/steady_continuation.py OUT RUN_DIR [RUN_DIR ...] --factor 10 --max-steps 200000
"""
import argparse
import csv
import math
import re
import resource
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np

from analysis.io import load_run


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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", help="directory of the continuations")
    ap.add_argument("runs", nargs="+", help="finished run directories (config.toml, run.h5, run.log)")
    ap.add_argument("--factor", type=float, default=10.0, help="continue to this multiple of the stop step")
    ap.add_argument("--min-steps", type=int, default=0, help="... but at least this many steps")
    ap.add_argument("--max-steps", type=int, default=200000, help="... and at most this many")
    ap.add_argument("--mpisim", default="mpisim", help="the mpisim program (default: on PATH)")
    ap.add_argument("-o", "--output", help="CSV of the table")
    a = ap.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for src in map(Path, a.runs):
        k_stop, why = stop_step(src)
        cfg = tomllib.loads((src / "config.toml").read_text())
        target = int(min(max(a.factor * k_stop, a.min_steps), a.max_steps))
        cfg["run"].update(steps=target, stop_when_steady=False)
        cfg["output"]["path"] = "run.h5"
        dst = out / src.name
        dst.mkdir(exist_ok=True)
        write_config(cfg, dst / "config.toml")
        h5, log = dst / "run.h5", dst / "run.log"
        done = log.exists() and re.search(r"(stopped at step \d+|active at step \d+)", log.read_text() or "")
        cpu = math.nan
        if not done:
            cmd = [a.mpisim, "run", str(dst / "config.toml"), "-o", str(h5), "--quiet"]
            if not h5.exists() and (src / "run.h5.ckpt").exists():
                shutil.copy2(src / "run.h5", h5)
                shutil.copy2(src / "run.h5.ckpt", dst / "run.h5.ckpt")
            if (dst / "run.h5.ckpt").exists():
                # (a copied finished run, or an interrupted continuation: the same command)
                cmd = [a.mpisim, "resume", str(h5), "--quiet", "--steps", str(target),
                       "--set", "run.stop_when_steady=false"]
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            with open(log, "a") as fh:
                fh.write(f"# {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} {' '.join(cmd)}\n")
                fh.flush()
                r = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT)
            if r.returncode != 0:
                print(f"steady_continuation: {dst} failed (exit {r.returncode}); see {log}", file=sys.stderr)
                continue
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        orig, cont = load_run(src / "run.h5"), load_run(h5)
        (ko, fo), (kc, fc) = orig.activity(), cont.activity()
        upto = kc <= ko[-1]
        same = bool(np.array_equal(kc[upto], ko) and np.array_equal(fc[upto], fo))
        absorbed = cont.absorbed
        p = orig.params
        rows.append({"n": p.n, "phi": p.phi, "seed": p.seed, "stop_step": k_stop, "stop_reason": why,
                     "continued_to": int(kc[-1]), "absorbed": absorbed,
                     "absorbed_step": cont.absorbed_step if absorbed else "",
                     "f_a_at_stop": float(fo[-1]),
                     "f_a_last_half": float(fc[kc >= kc[-1] / 2].mean()),
                     "same_trajectory_to_stop": same, "cpu_children_s": round(cpu, 1),
                     "run": src.name})
        if len(rows) == 1:
            print("\t".join(rows[0]), flush=True)
        print("\t".join(str(v) for v in rows[-1].values()), flush=True)
    if a.output and rows:
        with open(a.output, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
