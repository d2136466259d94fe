"""``launch/sweep {plan,run,slurm,status} SWEEP.toml`` (``python -m studies``; docs/sweeps.md).

``plan`` resolves a sweep file into one directory per run and a manifest (``manifest.tsv``) that the
analysis package reads; ``run`` executes the runs here, packing them onto the cores; ``slurm`` writes
sbatch scripts for the same plan; ``status`` tells what is done; ``exec`` is what a cluster job runs.
Mistakes in the sweep file print one line and exit with status 2, before anything is written.
"""
import argparse
import os
import sys

from .local import _Stop, execute
from .plan import Sweep, SweepError, check_slurm_options, write_plan
from .slurm import exec_runs, task_runs, write_slurm
from .status import DONE, FAILED, LOG, MANIFEST, PENDING, RUNNING, run_state, status_counts, write_manifest

EXIT_USAGE = 2


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
    s = add("slurm", "write sbatch scripts (job arrays, one job per multi-node run) and the plan")
    s.add_argument("--yes", action="store_true", help="accept more runs than sweep.max_runs")
    s.add_argument("--partition", help="overrides slurm.partition")
    s.add_argument("--account", help="overrides slurm.account")
    s.add_argument("--time", help="wall time per job, e.g. 02:00:00 (overrides slurm.time)")
    s.add_argument("--ranks-per-node", type=int, help="overrides slurm.ranks_per_node")
    s.add_argument("--module", action="append", help="module to load (repeatable; replaces slurm.modules)")
    s.add_argument("--array-limit", type=int, help="array tasks running at once (overrides slurm.array_limit)")
    s.add_argument("--launcher", help="'auto', or the MPI launcher of multi-rank runs, e.g. 'srun --mpi=pmix' "
                   "or 'mpirun' (overrides slurm.launcher)")
    s.add_argument("--signal-seconds", type=int, help="SIGTERM this long before the time limit, so runs "
                   "checkpoint and stop (0: off; overrides slurm.signal_seconds)")
    s.add_argument("--runs-per-task", type=int, help="runs one after the other in each array task "
                   "(overrides slurm.runs_per_task)")
    add("status", "print what is done, running, failed; refresh the manifest")
    s = sub.add_parser("exec", help="(what the sbatch scripts run) run planned run directories in turn",
                       description="Run planned run directories one after the other: skip those done, "
                                   "resume interrupted ones, record failures.")
    s.add_argument("run_dirs", nargs="*", help="run directories")
    s.add_argument("--list", help="a file of run directories, one a line (with --task)")
    s.add_argument("--task", type=int, help="array task index: runs --per-task * task + 1 .. of --list")
    s.add_argument("--per-task", type=int, default=1, help="runs per array task (default 1)")
    s.add_argument("--ranks", type=int, default=1)
    s.add_argument("--launcher", default="auto", help="'auto' (default) or the MPI launcher of multi-rank runs")
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
    print(f"  {counts[DONE]} done, {counts[PENDING]} pending, {counts[FAILED]} failed, "
          f"{counts[RUNNING]} running; manifest: {sweep.out_dir / MANIFEST}")
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
    failed = [name for name, st in states.items() if st[0] == FAILED]
    for name in failed:
        print(f"  failed: {name}: {states[name][1]}  (log: {sweep.out_dir / name / LOG})")
    return 1 if failed else 0


def cmd_slurm(sweep, args):
    opts = dict(sweep.slurm)
    for key in ("partition", "account", "time", "ranks_per_node", "array_limit", "launcher", "signal_seconds",
                "runs_per_task"):
        if getattr(args, key) is not None:
            opts[key] = getattr(args, key)
    if args.module:
        opts["modules"] = args.module
    check_slurm_options(opts, "command line")
    runs = sweep.plan(allow_many=args.yes)
    states = write_plan(sweep, runs)
    files = write_slurm(sweep, runs, states, opts)
    todo = sum(states[r.name][0] != DONE for r in runs)
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
    print(f"sweep {sweep.name}: {counts[DONE]}/{len(runs)} done, {counts[RUNNING]} running, "
          f"{counts[FAILED]} failed, {counts[PENDING]} pending"
          + ("" if sweep.out_dir.is_dir() else " (not planned yet)"))
    return 0


def cmd_exec(args):
    """Run the given run directories (or array task --task of --list) one after the other."""
    if args.ranks < 1 or args.per_task < 1:
        raise SweepError(f"--ranks and --per-task must be >= 1, got {args.ranks}, {args.per_task}")
    run_dirs = list(args.run_dirs)
    if args.list is not None:
        if args.task is None:
            raise SweepError("--list needs --task (the array task index)")
        run_dirs += task_runs(args.list, args.task, args.per_task)
    if not run_dirs:
        raise SweepError("exec: give run directories, or --list FILE --task I")
    return exec_runs(run_dirs, args.ranks, args.launcher)
