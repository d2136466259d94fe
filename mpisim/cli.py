"""Command line: ``mpisim run CONFIG.toml``, ``mpisim info OUT.h5``; ``mpisim --help``.

User mistakes (bad config, existing output, missing file) print one line and exit with status 2 on every
rank, before anything is written. Any other exception on any rank prints the rank and the message and
aborts the whole MPI job, so that no rank waits forever for a partner that died.
"""
import argparse
import sys
import traceback
from pathlib import Path

EXIT_USAGE = 2


class UsageError(Exception):
    """A mistake in what the user asked for; exit status 2."""


def build_parser():
    parser = argparse.ArgumentParser(
        prog="mpisim",
        description="Distributed simulator of biased random organization, SGD, RCD and related "
                    "stochastic particle dynamics. Run under mpirun/srun for domain decomposition.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run a simulation from a TOML config",
                         description="Run a simulation from a TOML config (see docs/configuration.md).")
    run.add_argument("config", help="TOML file with [system], [dynamics], [run], [output]")
    run.add_argument("-o", "--output", help="output .h5 file (default: output.path of the config)")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override one config key, e.g. --set dynamics.kick_size=0.05 (repeatable)")
    run.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    run.add_argument("--quiet", action="store_true", help="no progress lines")

    info = sub.add_parser("info", help="summarise an output file", description="Print a human summary "
                          "of an output file: parameters, frames, last step, absorbed or not, size.")
    info.add_argument("path", help="an .h5 file written by mpisim run")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    from .domain import world
    comm = world()
    try:
        if args.command == "run":
            return _run(args, comm)
        if args.command == "info":
            return _info(args)
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001 - every failure must end the whole job
        from .config import ConfigError
        if isinstance(exc, (ConfigError, UsageError, FileExistsError)):
            if comm.rank == 0:
                print(f"mpisim: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        print(f"mpisim: rank {comm.rank} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        traceback.print_exc(file=sys.stderr)
        sys.stderr.flush()
        if comm.size > 1:
            comm.Abort(1)
        return 1
    return 0


def _run(args, comm):
    from .config import RunConfig, apply_overrides
    from .simulation import Simulation
    import dataclasses

    config = RunConfig.from_toml(args.config, args.overrides)
    output = Path(args.output) if args.output else Path(config.output.path)
    if not output.parent.exists():
        raise UsageError(f"output directory {str(output.parent)!r} does not exist")
    if output.exists() and not args.overwrite:
        raise UsageError(f"{output} exists; pass --overwrite to replace it")
    if args.output:
        config = config.replace(output=dataclasses.replace(config.output, path=str(output)))
    if args.quiet:
        config = config.replace(run=dataclasses.replace(config.run, progress_seconds=0.0))
    sim = Simulation(config, output=str(output), comm=comm, overwrite=args.overwrite)
    sim.run()
    if comm.rank == 0:
        state = (f"absorbed at step {sim.absorbed_step}" if sim.absorbed_step >= 0
                 else f"active at step {sim.step}")
        print(f"mpisim: wrote {output} ({state})", file=sys.stderr)
    return 0


def _info(args):
    import h5py
    path = Path(args.path)
    if not path.is_file():
        raise UsageError(f"no such file {str(path)!r}")
    try:
        f = h5py.File(path, "r")
    except OSError:
        raise UsageError(f"{path} is not an HDF5 file") from None
    with f:
        if "parameters" not in f or "particles/all" not in f:
            raise UsageError(f"{path} is not an mpisim output (no /parameters or /particles/all)")
        prov = dict(f["parameters/provenance"].attrs)
        steps = f["particles/all/position/step"][:]
        obs_steps = f["observables/activity/step"][:]
        act = f["observables/activity/value"][:]
        print(f"file        {path} ({path.stat().st_size / 1e6:.2f} MB)")
        print(f"particles   N = {f['particles/all/id'].shape[0]}, d = {int(f['particles/all/box'].attrs['dimension'])}, "
              f"box = {f['particles/all/box/edges'][:]}")
        print(f"frames      {len(steps)} (steps {', '.join(map(str, steps[:6]))}{' ...' if len(steps) > 6 else ''})")
        print(f"observables {len(obs_steps)} rows, last step {obs_steps[-1] if len(obs_steps) else '-'}, "
              f"last activity {act[-1] if len(act) else float('nan'):.6g}")
        absorbed = bool(prov.get("absorbed", False))
        print(f"absorbed    {'yes, at step ' + str(int(prov['absorbed_step'])) if absorbed else 'no'}")
        print(f"ran on      {int(prov.get('mpi_size', 1))} ranks, grid {list(prov.get('rank_grid', []))}, "
              f"host {prov.get('host', '?')}, {prov.get('start_time', '?')} .. {prov.get('end_time', '?') or 'unfinished'}")
        print("parameters")
        for line in f["parameters"].attrs["config_toml"].splitlines():
            print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
