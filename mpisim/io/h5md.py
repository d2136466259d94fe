"""H5MD 1.1 output (docs/file-format.md).

With parallel h5py (``h5py.get_config().mpi``) every rank writes its block of global ids into one shared
file with the ``mpio`` driver; otherwise the rows are gathered to rank 0, which writes alone (same file
contents; the cost is one gather of N rows per snapshot, see docs/performance.md). Either way the
particles are first redistributed so that a rank holds a contiguous block of ids, and each snapshot is one
contiguous hyperslab per rank.
"""
import os
import socket
import subprocess
import time
from pathlib import Path

import h5py
import numpy as np

from .. import __version__
from ..domain import id_blocks, redistribute_by_id
from ..observables import DTYPES, NAMES

CHUNK_ROWS = 1 << 16


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


class H5MDWriter:
    """Writes one run. Collective: every rank calls every method in the same order.

    comm: the simulation's communicator; dim: 2 or 3; n_total: N; box: edges (dim,).
    """

    def __init__(self, path, config, comm, dim, n_total, box, grid, mode="w"):
        self.path = str(path)
        self.comm = comm
        self.dim = dim
        self.n_total = n_total
        self.collective = comm.size > 1 and parallel_h5py()
        self.writes = comm.rank == 0 or self.collective
        blocks = id_blocks(n_total, comm.size if self.collective else 1)
        r = comm.rank if self.collective else 0
        self.block = (int(blocks[r]), int(blocks[r + 1]))
        self.file = None
        if self.writes:
            kwargs = {"driver": "mpio", "comm": comm} if self.collective else {}
            self.file = h5py.File(self.path, mode, **kwargs)
        if mode == "w" and self.writes:
            self._create(config, box, grid)

    # ------------------------------------------------------------------------------------------ layout
    def _create(self, config, box, grid):
        f = self.file
        h5md = f.create_group("h5md")
        h5md.attrs["version"] = np.array([1, 1], dtype=np.int32)
        author = h5md.create_group("author")
        author.attrs["name"] = os.environ.get("USER", "mpisim user")
        creator = h5md.create_group("creator")
        creator.attrs["name"] = "mpisim"
        creator.attrs["version"] = __version__
        part = f.create_group("particles/all")
        boxg = part.create_group("box")
        boxg.attrs["dimension"] = np.int32(self.dim)
        boxg.attrs["boundary"] = np.array(["periodic"] * self.dim, dtype=h5py.string_dtype())
        boxg.create_dataset("edges", data=np.asarray(box[:self.dim], dtype=np.float64))
        n, d = self.n_total, self.dim
        chunk_rows = min(n, CHUNK_ROWS)
        for name, dtype in (("position", np.float64), ("image", np.int32)):
            g = part.create_group(name)
            g.create_dataset("step", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(1024,))
            g.create_dataset("time", shape=(0,), maxshape=(None,), dtype=np.float64, chunks=(1024,))
            g.create_dataset("value", shape=(0, n, d), maxshape=(None, n, d), dtype=dtype,
                             chunks=(1, chunk_rows, d))
        part.create_dataset("id", shape=(n,), dtype=np.int64)
        part.create_dataset("radius", shape=(n,), dtype=np.float64)
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
        prov = params.create_group("provenance")
        prov.attrs["package_version"] = __version__
        prov.attrs["git_commit"] = git_commit() if self.comm.rank == 0 else ""
        prov.attrs["mpi_size"] = np.int64(self.comm.size)
        prov.attrs["rank_grid"] = np.asarray(grid, dtype=np.int64)
        prov.attrs["host"] = socket.gethostname()
        prov.attrs["start_time"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        prov.attrs["end_time"] = ""
        prov.attrs["absorbed"] = False
        prov.attrs["absorbed_step"] = np.int64(-1)
        prov.attrs["h5py_mpio"] = self.collective

    # ---------------------------------------------------------------------------------------- particles
    def _block_rows(self, ids, rows):
        """This writer's rows sorted by id (all of them on rank 0 in the gathered path)."""
        got_ids, got = redistribute_by_id(self.comm, ids, rows, self.n_total, to_root=not self.collective)
        if self.writes and (len(got_ids) != self.block[1] - self.block[0]
                            or (len(got_ids) and got_ids[0] != self.block[0])):
            raise RuntimeError(f"rank {self.comm.rank}: lost particles while writing "
                               f"({len(got_ids)} rows for id block {self.block})")
        return got

    def write_static(self, ids, radius):
        got = self._block_rows(ids, radius[:, None])
        if self.writes:
            a, b = self.block
            self.file["particles/all/id"][a:b] = np.arange(a, b, dtype=np.int64)
            self.file["particles/all/radius"][a:b] = got[:, 0]

    def write_snapshot(self, step, ids, pos, image):
        """Append a frame: pos (n_own, dim) wrapped, image (n_own, dim), rank-local rows."""
        d = self.dim
        got = self._block_rows(ids, np.hstack([pos[:, :d], image[:, :d]]))
        if not self.writes:
            return
        part = self.file["particles/all"]
        frame = part["position/step"].shape[0]
        a, b = self.block
        for name, dtype, cols in (("position", np.float64, slice(0, d)), ("image", np.int32, slice(d, 2 * d))):
            g = part[name]
            for ds in ("step", "time", "value"):
                g[ds].resize(frame + 1, axis=0)
            g["value"][frame, a:b, :] = got[:, cols].astype(dtype)
            if self.comm.rank == 0:
                g["step"][frame] = step
                g["time"][frame] = float(step)

    def last_snapshot_step(self):
        if not self.writes:
            return None
        steps = self.file["particles/all/position/step"]
        return int(steps[-1]) if steps.shape[0] else None

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


def read_frame(path, frame=-1):
    """(step, ids, positions (N, d), images (N, d), radii, box (d,)) of one frame, serially."""
    with h5py.File(path, "r") as f:
        part = f["particles/all"]
        if part["position/value"].shape[0] == 0:
            raise ValueError(f"{path}: no snapshot stored")
        step = int(part["position/step"][frame])
        pos = part["position/value"][frame]
        img = part["image/value"][frame]
        return step, part["id"][:], pos, img, part["radius"][:], part["box/edges"][:]
