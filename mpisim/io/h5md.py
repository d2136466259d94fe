"""H5MD 1.1 output (docs/file-format.md).

With parallel h5py (``h5py.get_config().mpi``) every rank writes its block of global ids into one shared
file with the ``mpio`` driver; otherwise the rows are gathered to rank 0, which writes alone (same file
contents; the cost is one gather of N rows per snapshot, see docs/performance.md). Either way the
particles are first redistributed so that a rank holds a contiguous block of ids, and each snapshot is one
contiguous hyperslab per rank.

Every HDF5 call that changes metadata (create, resize, attributes) is made by every writing rank with the
same arguments, as parallel HDF5 requires; only the data of small datasets (step, time, observables) is
written by rank 0 alone.
"""
import os
import socket
import subprocess
import time
from pathlib import Path

import h5py
import numpy as np

from .. import __version__
from ..parallel.comm import id_blocks, redistribute_by_id
from ..core.observables import DTYPES, NAMES
from . import format as fmt
from .format import append_structure_factor, read_box, read_frame, read_parameters  # noqa: F401 (re-exported)

#: the /observables series the simulation records, {name: dtype}
SERIES = {name: DTYPES.get(name, np.float64) for name in NAMES}
# None: collective mpio writes when h5py has MPI and there is more than one rank; False: always gather to
# rank 0 (what a plain pip h5py does). Tests set it to compare both paths; runs never need to.
COLLECTIVE = None


def parallel_h5py():
    return bool(h5py.get_config().mpi)


def git_commit():
    try:
        here = Path(__file__).resolve().parents[2]
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5)
        return out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def now():
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def use_collective(comm, collective=None):
    """Whether a writer on ``comm`` writes collectively (mpio) or gathers to rank 0."""
    if collective is None:
        collective = COLLECTIVE
    if collective is None:
        collective = True
    return bool(collective) and comm.size > 1 and parallel_h5py()


def open_shared(path, mode, comm, collective):
    """h5py.File on every rank (mpio) or on rank 0 only (None elsewhere)."""
    if collective:
        return h5py.File(path, mode, driver="mpio", comm=comm)
    return h5py.File(path, mode) if comm.rank == 0 else None


class BlockRows:
    """Rows of a per-particle array brought to the writing ranks, one contiguous block of ids each."""

    def __init__(self, comm, n_total, collective):
        self.comm, self.n_total, self.collective = comm, n_total, collective
        self.writes = comm.rank == 0 or collective
        blocks = id_blocks(n_total, comm.size if collective else 1)
        r = comm.rank if collective else 0
        self.block = (int(blocks[r]), int(blocks[r + 1]))

    def gather(self, ids, rows):
        """This writer's rows sorted by id (all of them on rank 0 in the gathered path); collective."""
        got_ids, got = redistribute_by_id(self.comm, ids, rows, self.n_total, to_root=not self.collective)
        if self.writes and (len(got_ids) != self.block[1] - self.block[0]
                            or (len(got_ids) and got_ids[0] != self.block[0])):
            raise RuntimeError(f"rank {self.comm.rank}: lost particles while writing "
                               f"({len(got_ids)} rows for id block {self.block})")
        return got

    def write(self, dataset, values, index=()):
        """dataset[index + (block rows,)] = values.

        Independent (not collective) MPI-IO transfers: each rank's block is one contiguous byte range per
        chunk, so collective buffering gains little, and Open MPI's OMPIO fails collective writes
        ("pwritev: Invalid argument") into files first created without the mpio driver, which is
        what resuming a serial run on more ranks does.
        """
        a, b = self.block
        dataset[index + (slice(a, b),)] = values


class H5MDWriter:
    """Writes one run. Collective: every rank calls every method in the same order.

    comm: the simulation's communicator; dim: 2 or 3; n_total: N; box: edges (dim,) or (3,); grid: the
    rank grid; mode: "w" (new file) or "r+" (append to an existing output, e.g. on resume); species:
    the rank's species indices (any int array) for a system of species, else None; collective: None
    (automatic, see ``COLLECTIVE``) or False to gather to rank 0.
    """

    def __init__(self, path, config, comm, dim, n_total, box, grid, mode="w", species=None, collective=None):
        self.path = str(path)
        self.comm = comm
        self.dim = dim
        self.n_total = n_total
        self.collective = use_collective(comm, collective)
        self.rows = BlockRows(comm, n_total, self.collective)
        self.writes = self.rows.writes
        self.block = self.rows.block
        self.box = np.asarray(box[:dim], dtype=np.float64)
        self.file = open_shared(self.path, mode, comm, self.collective)
        self.last_step = None  # step of the last stored frame (global, on every rank)
        self._series = None    # {name: its (step, time, value) datasets}, looked up at the first append
        if mode == "w":
            prov = comm.bcast(self._provenance(grid) if comm.rank == 0 else None, root=0)
            self.start_time = prov["start_time"]   # names the run (its checkpoints record it)
            if self.writes:
                author = prov.pop("author")
                fmt.create_layout(self.file, n_total, dim, series=SERIES, config_toml=config.to_toml(),
                                  sections=config.to_dict(), provenance=prov, author=author,
                                  creator_version=__version__, with_species=species is not None)
        elif self.writes:
            fmt.upgrade_layout(self.file)

    def _provenance(self, grid):
        return {"package_version": __version__, "git_commit": git_commit(), "mpi_size": np.int64(self.comm.size),
                "rank_grid": np.asarray(grid, dtype=np.int64), "host": socket.gethostname(),
                "start_time": now(), "end_time": "", "absorbed": False, "absorbed_step": np.int64(-1),
                "last_step": np.int64(-1), "h5py_mpio": self.collective,
                "resumed_at_step": np.zeros(0, dtype=np.int64), "resumed_mpi_size": np.zeros(0, dtype=np.int64),
                "author": os.environ.get("USER", "") or "mpisim user"}

    # ---------------------------------------------------------------------------------------- particles
    def write_static(self, ids, radius, species=None):
        """id, radius (and species) datasets; ids, radius, species: rank-local owned rows."""
        cols = [radius[:, None]] + ([species[:, None].astype(np.float64)] if species is not None else [])
        got = self.rows.gather(ids, np.hstack(cols))
        if self.writes:
            a, b = self.block
            self.rows.write(self.file[fmt.ID], np.arange(a, b, dtype=np.int64))
            self.rows.write(self.file[fmt.RADIUS], got[:, 0])
            if species is not None:
                self.rows.write(self.file[fmt.SPECIES], got[:, 1].astype(np.int32))

    def write_snapshot(self, step, ids, pos, image):
        """Append a frame: pos (n_own, >= dim) wrapped, image (n_own, >= dim), rank-local rows."""
        d = self.dim
        got = self.rows.gather(ids, np.hstack([pos[:, :d], image[:, :d]]))
        self.last_step = step
        if not self.writes:
            return
        frame = fmt.frame_count(self.file)
        fmt.resize_frames(self.file, frame + 1)
        self.rows.write(self.file[fmt.POSITION_VALUE], got[:, :d], (frame,))
        self.rows.write(self.file[fmt.IMAGE_VALUE], got[:, d:].astype(np.int32), (frame,))
        if self.comm.rank == 0:
            fmt.write_frame_header(self.file, frame, step, self.box)

    def last_snapshot_step(self):
        return self.last_step

    def snapshot_steps(self):
        """Steps of the stored frames (global, on every rank)."""
        steps = fmt.frame_steps(self.file) if self.comm.rank == 0 else None
        return self.comm.bcast(steps, root=0)

    # -------------------------------------------------------------------------------------- observables
    def append_observables(self, rows):
        """rows: list of (step, {name: value}); identical on all ranks."""
        if not rows or not self.writes:
            return
        steps = np.array([r[0] for r in rows], dtype=np.int64)
        if self._series is None:
            self._series = {name: fmt.series_datasets(self.file[fmt.observable_path(name)]) for name in NAMES}
        for name in NAMES:
            datasets = self._series[name]
            first = datasets[0].shape[0]
            for d in datasets:
                d.resize(first + len(rows), axis=0)
            if self.comm.rank == 0:
                fmt.write_series_datasets(datasets, first, steps, [r[1][name] for r in rows])

    def read_observables(self):
        """{"step": int64 [n], name: [n]} of the stored series (global, on every rank)."""
        out = None
        if self.comm.rank == 0:
            out = {"step": fmt.read_series(self.file, NAMES[0])[0]}
            out.update({name: fmt.read_series(self.file, name)[1] for name in NAMES})
        return self.comm.bcast(out, root=0)

    # ------------------------------------------------------------------------------------------ restart
    def truncate(self, step):
        """Drop every frame, observable row and S(k) row at a step >= ``step`` (written after a checkpoint
        taken at ``step``), so that a resumed run appends exactly what an uninterrupted one would have."""
        keep = None
        if self.comm.rank == 0:
            f = self.file
            series = {name: f[fmt.observable_path(name)] for name in NAMES}
            if fmt.STRUCTURE_FACTOR in f:
                series[fmt.STRUCTURE_FACTOR] = f[fmt.STRUCTURE_FACTOR]
            keep = {"frames": int(np.searchsorted(fmt.frame_steps(f), step, side="left")),
                    "rows": {name: int(np.searchsorted(fmt.series_steps(g), step, side="left"))
                             for name, g in series.items()}}
        keep = self.comm.bcast(keep, root=0)
        steps = self.snapshot_steps()[:keep["frames"]]
        self.last_step = int(steps[-1]) if len(steps) else None
        if not self.writes:
            return
        self._series = None
        fmt.resize_frames(self.file, keep["frames"])
        for name, rows in keep["rows"].items():
            group = fmt.STRUCTURE_FACTOR if name == fmt.STRUCTURE_FACTOR else fmt.observable_path(name)
            fmt.resize_series(self.file[group], rows)

    def append_structure_factor(self, result, attrs):
        """Append one S(k) measurement (mpisim.parallel.sofk.SofkResult, global) to /structure_factor."""
        if self.writes:
            append_structure_factor(self.file, result, attrs, write_values=self.comm.rank == 0)

    def note_resume(self, step):
        """Record in the provenance that the run was resumed at ``step`` on this many ranks."""
        if not self.writes:
            return
        prov = self.file[fmt.PROVENANCE]
        prov.attrs["resumed_at_step"] = np.append(prov.attrs.get("resumed_at_step", []), step).astype(np.int64)
        prov.attrs["resumed_mpi_size"] = np.append(prov.attrs.get("resumed_mpi_size", []),
                                                   self.comm.size).astype(np.int64)
        prov.attrs["end_time"] = ""

    def set_run_parameters(self, changed, config_toml, step, steps):
        """A resume that carries the run on with new values of some keys (``changed``: {[run] key: value})
        stores them in /parameters (config_toml and the section's attributes) and records in the
        provenance the ``step`` from which they hold and the run's ``steps`` (run.steps) from then."""
        if not self.writes:
            return
        params = self.file[fmt.PARAMETERS]
        params.attrs[fmt.CONFIG_TOML] = config_toml
        for key, value in changed.items():
            params["run"].attrs[key] = value
        prov = self.file[fmt.PROVENANCE]
        prov.attrs["carried_on_at_step"] = np.append(prov.attrs.get("carried_on_at_step", []), step).astype(np.int64)
        prov.attrs["carried_on_to_steps"] = np.append(prov.attrs.get("carried_on_to_steps", []), steps).astype(np.int64)

    def set_provenance(self, **attrs):
        if self.writes:
            prov = self.file[fmt.PROVENANCE]
            for k, v in attrs.items():
                prov.attrs[k] = v

    def flush(self):
        if self.writes:
            self.file.flush()

    def close(self):
        self._series = None
        if self.file is not None:
            self.file.close()
            self.file = None
