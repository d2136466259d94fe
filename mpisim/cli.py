"""Command line: ``mpisim run CONFIG.toml``, ``mpisim info OUT.h5``, ``mpisim sofk OUT.h5``,
``mpisim export OUT.h5 --format gsd``; ``mpisim --help``.

User mistakes (bad config, existing output, missing file) print one line and exit with status 2 on every
rank, before anything is written. Any other exception on any rank prints the rank and the message and
aborts the whole MPI job, so that no rank waits forever for a partner that died.
"""
import argparse
import os
import signal
import sys
import traceback
from pathlib import Path

from .core.progress import one_line_warnings
from .io.format import parse_frames  # noqa: F401 (the --frames grammar of sofk and export)

EXIT_USAGE = 2


class UsageError(Exception):
    """A mistake in what the user asked for; exit status 2."""


def build_parser():
    from .core.sofk import AUTO_DIRECT_MAX_K, NUFFT_TOLERANCE
    parser = argparse.ArgumentParser(
        prog="mpisim",
        description="Distributed simulator of biased random organization, SGD, RCD and related "
                    "stochastic particle dynamics. Run under mpirun/srun for domain decomposition.")
    from . import __version__
    parser.add_argument("--version", action="version", version=f"mpisim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run a simulation from a TOML config",
                         description="Run a simulation from a TOML config (see docs/configuration.md).")
    run.add_argument("config", help="TOML file with [system], [dynamics], [run], [output]")
    run.add_argument("-o", "--output", help="output .h5 file (default: output.path of the config)")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override one config key, e.g. --set dynamics.kick_size=0.05 (repeatable)")
    run.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    run.add_argument("--resume", action="store_true", help="continue the output's run from its last "
                     "checkpoint (the config must match the file's parameters)")
    run.add_argument("--quiet", action="store_true", help="no progress lines")

    resume = sub.add_parser("resume", help="continue a run from its checkpoint, or carry a finished run on",
                            description="Continue the run stored in OUT.h5 from OUT.h5.ckpt, with the "
                                        "parameters stored in the file. The result equals an uninterrupted "
                                        "run, on any number of ranks. With --steps K a finished run (its last "
                                        "state kept, run.keep_checkpoint) goes on to step K: the file then "
                                        "equals one run of K steps.")
    resume.add_argument("path", help="an .h5 file written by mpisim run (with checkpoints enabled)")
    resume.add_argument("--steps", type=int, metavar="K", help="a new run.steps (the total, not the steps to add)")
    resume.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="change a key that decides only where the run ends (run.stop_when_steady, "
                             "run.steady_min_steps) or no result (checkpoints, progress); repeatable")
    resume.add_argument("--quiet", action="store_true", help="no progress lines")

    info = sub.add_parser("info", help="summarise an output file", description="Print a human summary "
                          "of an output file: parameters, frames, last step, absorbed or not, size.")
    info.add_argument("path", help="an .h5 file written by mpisim run")

    sofk = sub.add_parser("sofk", help="structure factor S(k) of saved snapshots, in parallel",
                          description="S(k) of frames stored in OUT.h5, each rank reading its share of "
                                      "the particles; results go to /structure_factor of OUT.h5 "
                                      "(or of --output). See docs/structure-factor.md.")
    sofk.add_argument("path", help="an .h5 file written by mpisim run")
    sofk.add_argument("--frames", default="all", help="'all' (default) or frame indices and slices, "
                      "e.g. 0,5,-1 or 10:20:2")
    sofk.add_argument("--k-max", type=float, default=0.0, help="largest |k| (default 0: 2 pi 8 / L)")
    sofk.add_argument("--k-min", type=float, default=0.0, help="smallest binned |k| (default 0)")
    sofk.add_argument("--bins", type=int, default=32, help="bins of |k| (default 32)")
    sofk.add_argument("--method", choices=("auto", "direct", "nufft"), default="auto",
                      help="direct: exact sums (cost N x wave vectors); nufft: one type-1 NUFFT (finufft), "
                           f"within --tolerance, for large k_max; auto (default): direct up to "
                           f"{AUTO_DIRECT_MAX_K[3]} (3d) / {AUTO_DIRECT_MAX_K[2]} (2d) wave vectors, nufft beyond")
    sofk.add_argument("--tolerance", type=float, default=NUFFT_TOLERANCE,
                      help=f"nufft: finufft's relative tolerance (default {NUFFT_TOLERANCE:g}: S within about "
                           "that of the exact sums)")
    sofk.add_argument("--octant", action="store_true", help="only k with n_a >= 0 (freud's sampling)")
    sofk.add_argument("-o", "--output", help="write to this new .h5 file instead of PATH")
    sofk.add_argument("--overwrite", action="store_true",
                      help="replace an existing /structure_factor (or --output file)")
    sofk.add_argument("--progress-seconds", type=float, default=10.0,
                      help="progress on stderr every S seconds (a tqdm bar on a terminal or in a notebook when "
                           "tqdm is installed); the first frame (kernel compilation) is timed apart; 0: none")

    export = sub.add_parser("export", help="write snapshots in another format (GSD for OVITO, HOOMD-blue)",
                            description="Write the frames of OUT.h5 to a GSD file (HOOMD-blue's format, read by "
                                        "OVITO, HOOMD-blue, freud, MDAnalysis): step, box, positions, images, "
                                        "diameters, species as types; 2d and 3d. See docs/file-format.md.")
    export.add_argument("path", help="an .h5 file written by mpisim run")
    export.add_argument("--format", dest="to", choices=("gsd",), required=True, help="output format")
    export.add_argument("-o", "--output", help="output file (default: PATH with the format's suffix)")
    export.add_argument("--frames", default="all", help="'all' (default) or frame indices and slices, "
                        "e.g. 0,5,-1 or 10:20:2")
    export.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    return parser


#: the signals that make `mpisim run` and `resume` checkpoint and stop (Simulation.stop_on_signals): a batch
#: system's warning before the time limit, a launcher's forwarded signal, Ctrl-C
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)

#: SIGTERM / SIGUSR1 that reached `mpisim run` or `resume` during its start-up (_keep_early_signals)
_early_signals = []


def _keep_early_signals():
    """Until the run takes SIGTERM and SIGUSR1 over (Simulation.stop_on_signals), keep them instead of
    dying: a batch system's time-limit warning (or a launcher's SIGUSR1) that comes during the start-up
    (imports, MPI, set-up; tens of seconds on a loaded node) still ends in a checkpoint, at the first
    step the run can stop at (_take_early_signals). Returns the previous handlers."""
    def keep(signum, frame):
        _early_signals.append(signum)
    previous = {}
    for s in (signal.SIGTERM, signal.SIGUSR1):
        try:
            previous[s] = signal.signal(s, keep)
        except ValueError:          # not the main thread (an embedding program): leave its handlers
            pass
    return previous


def _take_early_signals(sim):
    """Hand a signal kept during start-up to the run (after sim.stop_on_signals())."""
    if _early_signals:
        sim.interrupt_reason = signal.Signals(_early_signals[0]).name
        _early_signals.clear()


def main(argv=None):
    args = build_parser().parse_args(argv)
    previous = _keep_early_signals() if args.command in ("run", "resume") else {}
    try:
        from .parallel.comm import world
        comm = world()
        commands = {"run": _run, "resume": _resume, "info": lambda a, c: _info(a), "sofk": _sofk,
                    "export": _export}
        with one_line_warnings("mpisim"):
            return guarded(comm, lambda: commands[args.command](args, comm))
    finally:
        _early_signals.clear()
        for s, handler in previous.items():
            signal.signal(s, handler)


def guarded(comm, work):
    """Run work() on every rank. A user mistake returns 2 (message on rank 0); any other exception on
    any rank prints the rank and the error and aborts the whole MPI job, so no rank hangs."""
    from .config import ConfigError
    try:
        return work() or 0
    except (ConfigError, UsageError, FileExistsError) as exc:
        if comm.rank == 0:
            print(f"mpisim: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (SystemExit, KeyboardInterrupt):
        raise
    except OSError as exc:
        from .io.errors import WriteError
        if not isinstance(exc, WriteError):
            return _failed(comm, exc)
        # A failed write: one line naming the file and the OS error, on the rank that saw it. The file
        # is left unfinished (never marked finished); HDF5 cannot close it cleanly (it would crash at
        # exit), so the process ends here, without interpreter clean-up (os._exit), or the whole job.
        print(f"mpisim: error: {exc}; the output is left unfinished (its last checkpoint, if any, is kept)",
              file=sys.stderr)
        sys.stderr.flush()
        sys.stdout.flush()
        from .parallel.comm import abort_job
        abort_job(comm, 1)
        os._exit(1)
    except BaseException as exc:  # noqa: BLE001 - every failure must end the whole job
        return _failed(comm, exc)


def _failed(comm, exc):
    """Print the rank and the error, and abort the whole MPI job (exit status 1)."""
    print(f"mpisim: rank {comm.rank} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
    traceback.print_exc(file=sys.stderr)
    sys.stderr.flush()
    from .parallel.comm import abort_job
    abort_job(comm, 1)
    return 1


def _run(args, comm):
    from .config import RunConfig
    from .parallel.comm import on_root
    from .simulation import Simulation
    import dataclasses

    from .simulation import OUTPUT_SUFFIXES
    config = RunConfig.from_toml(args.config, args.overrides)
    if args.output and not args.output.endswith(OUTPUT_SUFFIXES):
        # The same rule as output.path: never write HDF5 over a config or any other file by a slip.
        raise UsageError(f"-o/--output: must name an {', '.join(OUTPUT_SUFFIXES)} file, got {args.output!r}")
    output = Path(args.output) if args.output else Path(config.output.path)
    problem = on_root(comm, _unwritable_directory, output.parent)
    if problem:
        raise UsageError(problem)
    if args.resume and args.overwrite:
        raise UsageError("--resume and --overwrite exclude each other")
    if output.exists() and not args.overwrite and not args.resume:
        raise UsageError(f"{output} exists; pass --overwrite to replace it, or --resume to continue it")
    if args.output:
        config = config.replace(output=dataclasses.replace(config.output, path=str(output)))
    if args.quiet:
        config = config.replace(run=dataclasses.replace(config.run, progress_seconds=0.0))
    if args.resume:
        sim = Simulation.resume(config, output=str(output), comm=comm)
    else:
        sim = Simulation(config, output=str(output), comm=comm, overwrite=args.overwrite)
    with sim:
        sim.stop_on_signals(STOP_SIGNALS)
        _take_early_signals(sim)
        sim.run()
        return _report(sim, output, comm)


def _unwritable_directory(directory):
    """Why no output can be created in ``directory`` (a message), or None: tried, not guessed from the
    permission bits (root, ACLs and read-only mounts all differ)."""
    import tempfile
    if not directory.is_dir():
        return f"output directory {str(directory)!r} does not exist"
    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        return f"output directory {str(directory)!r} is not writable ({exc.strerror or exc})"
    return None


def _resume(args, comm):
    from .simulation import Simulation, config_of_output
    import dataclasses

    from .io.checkpoint import resume_target
    from .parallel.comm import on_root
    path = Path(args.path)
    # the parameters of the file the resume continues: OUT.h5, or an interrupted --overwrite's OUT.h5.new
    config = config_of_output(on_root(comm, resume_target, str(path)), comm)
    config = config.replace(output=dataclasses.replace(config.output, path=str(path)))
    if args.quiet:
        config = config.replace(run=dataclasses.replace(config.run, progress_seconds=0.0))
    with Simulation.resume(config, output=str(path), comm=comm, steps=args.steps, overrides=args.overrides) as sim:
        sim.stop_on_signals(STOP_SIGNALS)
        _take_early_signals(sim)
        sim.run()
        return _report(sim, path, comm)


def _sofk(args, comm):
    """mpisim sofk: S(k) of stored frames (sofk_frames, mpisim/parallel/sofk.py); rank 0 writes the results at
    the end."""
    import time
    import h5py
    from .core.progress import ItemProgress
    from .parallel.comm import on_root
    from .io import format as fmt
    from .io.format import STRUCTURE_FACTOR, append_structure_factor, remove_structure_factor, structure_factor_path

    path = Path(args.path)

    def check():
        problem, n_frames = None, 0
        try:
            with h5py.File(path, "r") as f:
                if not fmt.has_positions(f):
                    problem = f"{path} is not an mpisim output (no /{fmt.POSITION})"
                else:
                    n_frames = fmt.frame_count(f)
                    if not args.output and structure_factor_path(f) and not args.overwrite:
                        problem = (f"{path} already holds /{structure_factor_path(f)}; pass --overwrite to "
                                   "replace it or -o NEW.h5")
        except (OSError, FileNotFoundError):
            problem = f"{path}: no such file or not an HDF5 file"
        if args.output and Path(args.output).exists() and not args.overwrite:
            problem = f"--output: {args.output} exists; pass --overwrite to replace it"
        elif args.output and not Path(args.output).resolve().parent.is_dir():
            problem = f"--output: directory of {args.output!r} does not exist"
        return problem, n_frames
    problem, n_frames = on_root(comm, check)
    if problem:
        raise UsageError(problem)
    options = {"k_max": args.k_max, "k_min": args.k_min, "bins": args.bins, "method": args.method,
               "tolerance": args.tolerance, "octant": args.octant}
    if args.bins < 1:
        raise UsageError(f"--bins must be >= 1, got {args.bins}")
    t0 = time.perf_counter()
    try:
        frames = parse_frames(args.frames, n_frames)
        report = ItemProgress(len(frames), "S(k) frames", seconds=args.progress_seconds,
                              enabled=comm.rank == 0 and args.progress_seconds > 0)
        meas, results = sofk_frames(str(path), frames, comm=comm, progress=report, **options)
        report.close()
    except ValueError as exc:
        msg = str(exc)
        raise UsageError(msg if msg.startswith("--") else "--" + msg.replace("_", "-")) from None
    seconds = time.perf_counter() - t0

    def write():
        target = args.output or str(path)
        with h5py.File(target, "w" if args.output else "r+") as f:
            remove_structure_factor(f)
            attrs = dict(meas.attrs(), source=str(path), mpi_size=comm.size)
            for r in results:
                append_structure_factor(f, r, attrs)
        print(f"mpisim: S(k) of {len(results)} frame(s), {meas.method}, {meas.kvecs.shape[0]} wave vectors, "
              f"{seconds:.2f} s on {comm.size} rank(s) -> {target}:/{STRUCTURE_FACTOR}", file=sys.stderr)
    on_root(comm, write)   # no rank returns before the file is written
    return 0


# ------------------------------------------------------------------------- S(k) of saved frames
# parse_frames (the --frames grammar of sofk and export) is mpisim.io.format.parse_frames, imported above.
def sofk_frames(path, frames, comm=None, progress=None, **options):
    """S(k) of frames of an mpisim output file; each rank reads a contiguous block of particle rows
    (collective mpio reads when h5py has MPI). Returns (measurement, [SofkResult]) on every rank; the
    measurement is that of the last frame (one per distinct box).

    progress: an ItemProgress (mpisim/core/progress.py) told of each frame done, or None;
    options: the keyword arguments of :class:`StructureFactorMeasurement` (not box, dim, n_total)."""
    import h5py
    import numpy as np
    from .io import format as fmt
    from .io.h5md import parallel_h5py
    from .parallel.comm import id_blocks, world
    from .parallel.sofk import StructureFactorMeasurement
    comm = comm if comm is not None else world()
    collective = comm.size > 1 and parallel_h5py()
    kwargs = {"driver": "mpio", "comm": comm} if collective else {}
    results, meas = [], {}
    with h5py.File(path, "r", **kwargs) as f:
        dim = fmt.dimension(f)
        ds = fmt.positions_dataset(f)
        n_total = ds.shape[1]
        steps = fmt.frame_steps(f)
        blocks = id_blocks(n_total, comm.size)
        a, b = int(blocks[comm.rank]), int(blocks[comm.rank + 1])
        for fr in frames:
            box = np.asarray(fmt.read_box(f, fr), dtype=np.float64)
            key = tuple(box)
            if key not in meas:
                meas[key] = StructureFactorMeasurement(box, dim, n_total, comm=comm, **options)
            if collective:
                with ds.collective:
                    x = ds[fr, a:b, :]
            else:
                x = ds[fr, a:b, :]
            results.append(meas[key].compute(x, step=int(steps[fr])))
            if progress is not None:
                progress.done()
    return meas[key], results

def _export(args, comm):
    """mpisim export: frames of an output in another format (mpisim/io/viewers.py), written by rank 0."""
    from .parallel.comm import on_root

    def work():
        import h5py
        from .io import format as fmt
        path = Path(args.path)
        out = Path(args.output) if args.output else path.with_suffix(f".{args.to}")
        try:
            with h5py.File(path, "r") as f:
                if not fmt.is_output(f):
                    return f"{path} is not an mpisim output (no /parameters or /{fmt.PARTICLES})"
                n_frames = fmt.frame_count(f)
                dim = fmt.dimension(f)
        except OSError:
            return f"{path}: no such file or not an HDF5 file"
        if dim > 3:
            return f"--format {args.to}: GSD (HOOMD-blue, OVITO) holds 2-d and 3-d systems; {path} is {dim}-d"
        if out.resolve() == path.resolve():
            return f"--output: {out} is the input file"
        if out.exists() and not args.overwrite:
            return f"--output: {out} exists; pass --overwrite to replace it"
        if not out.resolve().parent.is_dir():
            return f"--output: directory of {str(out)!r} does not exist"
        try:
            frames = fmt.parse_frames(args.frames, n_frames)
        except ValueError as exc:
            return str(exc)
        try:
            from .io.viewers import export_gsd
        except ImportError:
            return "--format gsd needs the gsd package (pip install gsd)"
        count = export_gsd(path, out, frames)
        print(f"mpisim: wrote {count} frame(s) of {path} to {out}", file=sys.stderr)
        return None

    problem = on_root(comm, work)   # no rank returns before the file is written
    if problem:
        raise UsageError(problem)
    return 0


def _report(sim, output, comm):
    """The last line of a run; exit status 0, or 128 + the signal's number if a signal stopped it early
    (after a checkpoint: the shell's status of a run ended by that signal, but resumable)."""
    if sim.interrupted:
        if comm.rank == 0:
            print(f"mpisim: stopped by {sim.interrupt_reason} at step {sim.step}; checkpoint written, continue "
                  f"with: mpisim resume {output}", file=sys.stderr)
        return 128 + int(getattr(signal.Signals, sim.interrupt_reason))
    if comm.rank == 0:
        if sim.stop_reason is not None:
            state = f"stopped at step {sim.step}: {sim.stop_reason}"
        elif sim.absorbed_step >= 0:
            state = f"absorbed at step {sim.absorbed_step}, ran to step {sim.step}"
        else:
            state = f"active at step {sim.step}"
        print(f"mpisim: wrote {output} ({state})", file=sys.stderr)
    return 0


def _info(args):
    import h5py
    from .io import format as fmt
    path = Path(args.path)
    if not path.is_file():
        raise UsageError(f"no such file {str(path)!r}")
    from .io.lock import describe_open_error
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise UsageError(describe_open_error(path, exc)) from None
    with f:
        try:
            if not fmt.is_output(f):
                raise UsageError(f"{path} is not an mpisim output (no /{fmt.PARAMETERS} or /{fmt.PARTICLES})")
            _print_info(path, f)
        except BrokenPipeError:  # `mpisim info OUT.h5 | head`: stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, KeyError, ValueError, IndexError, TypeError) as exc:
            raise UsageError(f"{path} is damaged or not a complete mpisim output "
                             f"({type(exc).__name__}: {exc})") from None
    return 0


def _print_info(path, f):
    import numpy as np
    from .io import checkpoint_path
    from .io import format as fmt
    from .io.checkpoint import replacement_path
    prov = fmt.read_provenance(f)
    steps = fmt.frame_steps(f)
    obs_steps, act = fmt.read_series(f, "activity")
    n, d = fmt.particle_count(f), fmt.dimension(f)
    box = fmt.stored_box(f)
    species = fmt.species_count(f)
    ckpt = Path(checkpoint_path(path))
    end = str(prov.get("end_time", ""))
    last = max(int(steps[-1]) if len(steps) else -1, int(obs_steps[-1]) if len(obs_steps) else -1)
    shown = ", ".join(map(str, steps[:6])) + (f", ... {steps[-1]}" if len(steps) > 6 else "")
    print(f"file        {path} ({path.stat().st_size / 1e6:.2f} MB)")
    print(f"particles   N = {n}, d = {d}, box = {np.array2string(box, precision=6) if box is not None else '?'}"
          f"{', species ' + str(species) if species is not None else ''}")
    print(f"frames      {len(steps)} (steps {shown or '-'})")
    print(f"observables {len(obs_steps)} rows, last step {obs_steps[-1] if len(obs_steps) else '-'}, "
          f"last activity {act[-1] if len(act) else float('nan'):.6g}")
    if end:
        stopped = str(prov.get("stopped", ""))
        state = f"finished at step {int(prov.get('last_step', last))}" + (f" (stopped: {stopped})" if stopped else "")
        if ckpt.is_file() and _ckpt_step(ckpt) == int(prov.get("last_step", -1)):
            state += f"; last state kept ({ckpt.name}): mpisim resume {path} --steps K carries it on"
    else:
        state = f"unfinished (last step on file {last}); " + (
            f"checkpoint {ckpt.name} at step {_ckpt_step(ckpt)}: mpisim resume {path}" if ckpt.is_file()
            else "no checkpoint")
    print(f"status      {state}")
    side = Path(replacement_path(path))
    if side.is_file():
        side_ckpt = Path(checkpoint_path(side))
        print(f"replacement {side.name}: an --overwrite of this file, not complete; it replaces this file when its "
              f"run is complete" + (f"; checkpoint at step {_ckpt_step(side_ckpt)}: mpisim resume {path} continues it"
                                    if side_ckpt.is_file() else "; no checkpoint (start again with --overwrite)"))
    absorbed = bool(prov.get("absorbed", False)) or int(prov.get("absorbed_step", -1)) >= 0
    print(f"absorbed    {'yes, at step ' + str(int(prov['absorbed_step'])) if absorbed else 'no'}")
    grid = [int(g) for g in prov.get("rank_grid", [])]
    print(f"ran on      {int(prov.get('mpi_size', 1))} ranks, grid {grid}, host {prov.get('host', '?')}, "
          f"{prov.get('start_time', '?')} .. {end or 'unfinished'}"
          f"{', parallel HDF5 (mpio)' if prov.get('h5py_mpio', False) else ', gathered to rank 0' if int(prov.get('mpi_size', 1)) > 1 else ''}")
    resumed = [int(k) for k in prov.get("resumed_at_step", [])]
    if resumed:
        sizes = [int(k) for k in prov.get("resumed_mpi_size", [])]
        print("resumed     " + ", ".join(f"at step {k} on {m} ranks" for k, m in zip(resumed, sizes)))
    carried = [int(k) for k in prov.get("carried_on_at_step", [])]
    if carried:
        ends = [int(k) for k in prov.get("carried_on_to_steps", [])]
        print("carried on  " + ", ".join(f"at step {k} to {e} steps" for k, e in zip(carried, ends)))
    print(f"software    mpisim {prov.get('package_version', '?')}, commit {prov.get('git_commit', '') or 'unknown'}")
    print("parameters")
    for line in fmt.read_parameters(f).splitlines():
        print(f"  {line}")


def _ckpt_step(path):
    from .io.checkpoint import read_checkpoint_meta
    try:
        return int(read_checkpoint_meta(path)["step"])
    except (OSError, KeyError):
        return "?"


if __name__ == "__main__":
    sys.exit(main())
