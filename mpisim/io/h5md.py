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

CHUNK_ROWS = 1 << 16
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
    the rank's species indices (any int array) for a system of species, else None; collective: None (automatic, see ``COLLECTIVE``) or False
    to gather to rank 0.
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
        if mode == "w":
            prov = comm.bcast(self._provenance(grid) if comm.rank == 0 else None, root=0)
            if self.writes:
                self._create(config, species is not None, prov)

    # ------------------------------------------------------------------------------------------ layout
    def _provenance(self, grid):
        return {"package_version": __version__, "git_commit": git_commit(), "mpi_size": np.int64(self.comm.size),
                "rank_grid": np.asarray(grid, dtype=np.int64), "host": socket.gethostname(),
                "start_time": now(), "end_time": "", "absorbed": False, "absorbed_step": np.int64(-1),
                "last_step": np.int64(-1), "h5py_mpio": self.collective,
                "resumed_at_step": np.zeros(0, dtype=np.int64), "resumed_mpi_size": np.zeros(0, dtype=np.int64),
                "author": os.environ.get("USER", "") or "mpisim user"}

    def _create(self, config, with_species, prov):
        f = self.file
        h5md = f.create_group("h5md")
        h5md.attrs["version"] = np.array([1, 1], dtype=np.int32)
        author = h5md.create_group("author")
        author.attrs["name"] = prov.pop("author")
        creator = h5md.create_group("creator")
        creator.attrs["name"] = "mpisim"
        creator.attrs["version"] = __version__
        part = f.create_group("particles/all")
        n, d = self.n_total, self.dim
        chunk_rows = min(n, CHUNK_ROWS)
        for name, dtype in (("position", np.float64), ("image", np.int32)):
            g = part.create_group(name)
            if name == "position":
                g.create_dataset("step", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(1024,))
                g.create_dataset("time", shape=(0,), maxshape=(None,), dtype=np.float64, chunks=(1024,))
            else:
                # H5MD allows elements sampled together to share step/time: hard links, one dataset.
                g["step"] = part["position/step"]
                g["time"] = part["position/time"]
            g.create_dataset("value", shape=(0, n, d), maxshape=(None, n, d), dtype=dtype,
                             chunks=(1, chunk_rows, d))
        # The box is constant, but stored as a time-dependent element sampled with the positions: that is
        # the form MDAnalysis's H5MD reader understands (it reads box/edges/value[frame]).
        boxg = part.create_group("box")
        boxg.attrs["dimension"] = np.int32(d)
        boxg.attrs["boundary"] = np.array(["periodic"] * d, dtype=h5py.string_dtype())
        edges = boxg.create_group("edges")
        edges["step"] = part["position/step"]
        edges["time"] = part["position/time"]
        edges.create_dataset("value", shape=(0, d), maxshape=(None, d), dtype=np.float64, chunks=(1024, d))
        part.create_dataset("id", shape=(n,), dtype=np.int64)
        part.create_dataset("radius", shape=(n,), dtype=np.float64)
        if with_species:
            part.create_dataset("species", shape=(n,), dtype=np.int32)
        obs = f.create_group("observables")
        for name in NAMES:
            g = obs.create_group(name)
            g.create_dataset("step", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(4096,))
            g.create_dataset("time", shape=(0,), maxshape=(None,), dtype=np.float64, chunks=(4096,))
            g.create_dataset("value", shape=(0,), maxshape=(None,), dtype=DTYPES.get(name, np.float64),
                             chunks=(4096,))
        params = f.create_group("parameters")
        params.attrs["config_toml"] = config.to_toml()
        for section, table in config.to_dict().items():
            g = params.create_group(section)
            for k, v in table.items():
                g.attrs[k] = v if not (isinstance(v, list) and not v) else np.zeros(0)
        g = params.create_group("provenance")
        for k, v in prov.items():
            g.attrs[k] = v

    # ---------------------------------------------------------------------------------------- particles
    def write_static(self, ids, radius, species=None):
        """id, radius (and species) datasets; ids, radius, species: rank-local owned rows."""
        cols = [radius[:, None]] + ([species[:, None].astype(np.float64)] if species is not None else [])
        got = self.rows.gather(ids, np.hstack(cols))
        if self.writes:
            a, b = self.block
            part = self.file["particles/all"]
            self.rows.write(part["id"], np.arange(a, b, dtype=np.int64))
            self.rows.write(part["radius"], got[:, 0])
            if species is not None:
                self.rows.write(part["species"], got[:, 1].astype(np.int32))

    def write_snapshot(self, step, ids, pos, image):
        """Append a frame: pos (n_own, >= dim) wrapped, image (n_own, >= dim), rank-local rows."""
        d = self.dim
        got = self.rows.gather(ids, np.hstack([pos[:, :d], image[:, :d]]))
        self.last_step = step
        if not self.writes:
            return
        part = self.file["particles/all"]
        frame = part["position/step"].shape[0]
        for name in ("position/step", "position/time", "position/value", "image/value", "box/edges/value"):
            part[name].resize(frame + 1, axis=0)
        self.rows.write(part["position/value"], got[:, :d], (frame,))
        self.rows.write(part["image/value"], got[:, d:].astype(np.int32), (frame,))
        if self.comm.rank == 0:
            part["position/step"][frame] = step
            part["position/time"][frame] = float(step)
            part["box/edges/value"][frame] = self.box

    def last_snapshot_step(self):
        return self.last_step

    def snapshot_steps(self):
        """Steps of the stored frames (global, on every rank)."""
        steps = self.file["particles/all/position/step"][:] if self.comm.rank == 0 else None
        return self.comm.bcast(steps, root=0)

    # -------------------------------------------------------------------------------------- observables
    def append_observables(self, rows):
        """rows: list of (step, {name: value}); identical on all ranks."""
        if not rows or not self.writes:
            return
        obs = self.file["observables"]
        steps = np.array([r[0] for r in rows], dtype=np.int64)
        for name in NAMES:
            g = obs[name]
            n0 = g["step"].shape[0]
            for ds in ("step", "time", "value"):
                g[ds].resize(n0 + len(rows), axis=0)
            if self.comm.rank == 0:
                g["step"][n0:] = steps
                g["time"][n0:] = steps.astype(np.float64)
                g["value"][n0:] = np.array([r[1][name] for r in rows], dtype=DTYPES.get(name, np.float64))

    def read_observables(self):
        """{"step": int64 [n], name: [n]} of the stored series (global, on every rank)."""
        out = None
        if self.comm.rank == 0:
            obs = self.file["observables"]
            out = {"step": obs[NAMES[0]]["step"][:]}
            out.update({name: obs[name]["value"][:] for name in NAMES})
        return self.comm.bcast(out, root=0)

    # ------------------------------------------------------------------------------------------ restart
    def truncate(self, step):
        """Drop every frame and observable row at a step >= ``step`` (written after a checkpoint taken at
        ``step``), so that a resumed run appends exactly what an uninterrupted one would have."""
        keep = None
        if self.comm.rank == 0:
            f = self.file
            keep = {"frames": int(np.searchsorted(f["particles/all/position/step"][:], step, side="left")),
                    "rows": {name: int(np.searchsorted(f[f"observables/{name}/step"][:], step, side="left"))
                             for name in NAMES}}
        keep = self.comm.bcast(keep, root=0)
        self._truncate_structure_factor(step)
        steps = self.snapshot_steps()[:keep["frames"]]
        self.last_step = int(steps[-1]) if len(steps) else None
        if not self.writes:
            return
        part = self.file["particles/all"]
        for name in ("position/step", "position/time", "position/value", "image/value", "box/edges/value"):
            part[name].resize(keep["frames"], axis=0)
        for name in NAMES:
            for ds in ("step", "time", "value"):
                self.file[f"observables/{name}/{ds}"].resize(keep["rows"][name], axis=0)

    def append_structure_factor(self, result, attrs):
        """Append one S(k) measurement (mpisim.parallel.sofk.SofkResult, global) to /observables/structure_factor."""
        if self.writes:
            append_structure_factor(self.file, result, attrs, write_values=self.comm.rank == 0)

    def _truncate_structure_factor(self, step):
        """Drop S(k) rows at steps >= ``step`` (see truncate). Collective."""
        keep = None
        if self.comm.rank == 0 and SOFK_GROUP in self.file:
            keep = int(np.searchsorted(self.file[SOFK_GROUP + "/step"][:], step, side="left"))
        keep = self.comm.bcast(keep, root=0)
        if keep is not None and self.writes:
            for ds in ("step", "time", "value"):
                self.file[f"{SOFK_GROUP}/{ds}"].resize(keep, axis=0)

    def note_resume(self, step):
        """Record in the provenance that the run was resumed at ``step`` on this many ranks."""
        if not self.writes:
            return
        prov = self.file["parameters/provenance"]
        prov.attrs["resumed_at_step"] = np.append(prov.attrs.get("resumed_at_step", []), step).astype(np.int64)
        prov.attrs["resumed_mpi_size"] = np.append(prov.attrs.get("resumed_mpi_size", []),
                                                   self.comm.size).astype(np.int64)
        prov.attrs["end_time"] = ""

    def set_provenance(self, **attrs):
        if self.writes:
            prov = self.file["parameters/provenance"]
            for k, v in attrs.items():
                prov.attrs[k] = v

    def flush(self):
        if self.writes:
            self.file.flush()

    def close(self):
        if self.file is not None:
            self.file.close()
            self.file = None


def read_parameters(path):
    """The run configuration TOML text stored in an output file."""
    with h5py.File(path, "r") as f:
        return f["parameters"].attrs["config_toml"]


def read_box(part, frame=-1):
    """Box edges (d,) of a particles group: a time-dependent element (this writer) or a fixed dataset."""
    edges = part["box/edges"]
    if isinstance(edges, h5py.Group):
        return edges["value"][frame]
    return edges[()]


def read_frame(path, frame=-1):
    """(step, ids, positions (N, d), images (N, d), radii, box (d,)) of one frame, serially."""
    with h5py.File(path, "r") as f:
        part = f["particles/all"]
        if part["position/value"].shape[0] == 0:
            raise ValueError(f"{path}: no snapshot stored")
        step = int(part["position/step"][frame])
        pos = part["position/value"][frame]
        img = part["image/value"][frame]
        return step, part["id"][:], pos, img, part["radius"][:], read_box(part, frame)


# --------------------------------------------------------------------------------- structure factor
SOFK_GROUP = "observables/structure_factor"


def append_structure_factor(f, result, attrs, write_values=True, group=SOFK_GROUP):
    """Append one S(k) row (mpisim.parallel.sofk.SofkResult) to ``f[group]``, creating it at first use:
    k, k_mean [bins] float64, count [bins] int64, step [n] int64, time [n] float64, value [n, bins]
    float64, parameters as attributes (docs/file-format.md). Collective on a shared (mpio) file; only
    ranks with ``write_values`` write data."""
    bins = len(result.S)
    if group not in f:
        g = f.create_group(group)
        for key, v in attrs.items():
            g.attrs[key] = v
        fixed = (("k", result.k, np.float64), ("k_mean", result.k_mean, np.float64),
                 ("count", result.counts, np.int64))
        for name, _, dtype in fixed:
            g.create_dataset(name, shape=(bins,), dtype=dtype)
        g.create_dataset("step", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(256,))
        g.create_dataset("time", shape=(0,), maxshape=(None,), dtype=np.float64, chunks=(256,))
        g.create_dataset("value", shape=(0, bins), maxshape=(None, bins), dtype=np.float64,
                         chunks=(max(1, 4096 // bins), bins))
        if write_values:
            for name, data, dtype in fixed:
                g[name][:] = np.asarray(data, dtype=dtype)
    g = f[group]
    if g["value"].shape[1] != bins:
        raise ValueError(f"{group}: holds {g['value'].shape[1]} bins, the new measurement has {bins}")
    n0 = g["step"].shape[0]
    for ds in ("step", "time", "value"):
        g[ds].resize(n0 + 1, axis=0)
    if write_values:
        g["step"][n0] = result.step
        g["time"][n0] = float(result.step)
        g["value"][n0] = result.S
