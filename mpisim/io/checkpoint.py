"""Checkpoints for an exact restart (docs/file-format.md, "Checkpoint").

A checkpoint is a separate HDF5 file next to the output, ``OUT.h5.ckpt``. It is written collectively (or
gathered to rank 0) in the output's id-block layout to ``OUT.h5.ckpt.tmp`` and then renamed over the
previous checkpoint with ``os.replace``, so a run killed at any moment leaves either the old or the new
checkpoint, complete. Rows are ordered by global id, so a checkpoint can be read on any number of ranks:
each rank keeps the particles its subdomain owns.

Taken at the top of a step k, before the pair pass: it holds the state x_k (wrapped positions, images,
x_0 for the MSD, radii, aux columns) and what ``Simulation.measure()`` needs from the last move
x_{k-1} -> x_k (the global fixed-point sums of |dx| and |dx|^2, and the maximum of |dx|). Everything else (Verlet lists,
ghosts, the spatial sort) is rebuilt; results never depend on it.
"""
import os
import time

import h5py
import numpy as np

from .h5md import BlockRows, now, open_shared, use_collective

FORMAT = 1


def checkpoint_path(output):
    return f"{output}.ckpt"


def write_checkpoint(path, comm, state, dim, n_total, config_toml, meta, collective=None):
    """Write ``state``'s owned particles and ``meta`` (scalars/arrays, identical on all ranks) atomically.

    state: a ParticleState (rank-local owned rows); meta: dict with at least step, absorbed_step, disp_sums
    (int64 [4], global: kernels.D_ABS, D_SQ), max_disp (global). Collective. Returns the seconds spent (on every rank).
    """
    t0 = time.perf_counter()
    collective = use_collective(comm, collective)
    rows = BlockRows(comm, n_total, collective)
    tmp = f"{path}.tmp"
    n = state.n_own
    n_aux = state.n_aux
    # One redistribution for every column: float64 holds int32 images and ids < 2^53 exactly.
    cols = np.hstack([state.pos[:n], state.image[:n].astype(np.float64), state.x0[:n], state.radius[:n, None],
                      state.aux[:n, :n_aux]])
    got = rows.gather(state.ids[:n].copy(), cols)
    written = comm.bcast(now() if comm.rank == 0 else None, root=0)
    f = open_shared(tmp, "w", comm, collective)
    if rows.writes:
        f.attrs["format"] = np.int32(FORMAT)
        f.attrs["n_total"] = np.int64(n_total)
        f.attrs["dim"] = np.int32(dim)
        f.attrs["n_aux"] = np.int32(n_aux)
        f.attrs["config_toml"] = config_toml
        f.attrs["mpi_size"] = np.int64(comm.size)
        for k, v in meta.items():
            f.attrs[k] = v
        g = f.create_group("state")
        specs = (("position", np.float64, slice(0, 3)), ("image", np.int32, slice(3, 6)),
                 ("x0", np.float64, slice(6, 9)), ("radius", np.float64, 9),
                 ("aux", np.float64, slice(10, 10 + n_aux)))
        for name, dtype, cols_ in specs:
            if name == "aux" and n_aux == 0:
                continue
            shape = (n_total,) if isinstance(cols_, int) else (n_total, cols_.stop - cols_.start)
            ds = g.create_dataset(name, shape=shape, dtype=dtype)
            rows.write(ds, got[:, cols_].astype(dtype))
        f.attrs["written"] = written
    if f is not None:
        f.close()
    comm.Barrier()
    if comm.rank == 0:
        os.replace(tmp, path)
    comm.Barrier()
    return time.perf_counter() - t0


def read_checkpoint(path, block=None):
    """(meta dict, columns dict) of a checkpoint, read serially by the calling rank.

    block: (first id, end id) to read only those rows (rows are ordered by id), default all;
    columns: ids, position (n, 3), image, x0, radius, aux (n, n_aux).
    """
    with h5py.File(path, "r") as f:
        meta = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items()}
        if int(meta.get("format", -1)) != FORMAT:
            raise ValueError(f"{path}: unknown checkpoint format {meta.get('format')!r}")
        g = f["state"]
        lo, hi = block if block is not None else (0, g["position"].shape[0])
        n_aux = int(meta["n_aux"])
        cols = {"ids": np.arange(lo, hi, dtype=np.int64), "position": g["position"][lo:hi],
                "image": g["image"][lo:hi], "x0": g["x0"][lo:hi], "radius": g["radius"][lo:hi],
                "aux": g["aux"][lo:hi] if n_aux else np.zeros((hi - lo, 0))}
    return meta, cols
