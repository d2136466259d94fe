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

from ..core.state import ParticleSchema
from .h5md import BlockRows, now, open_shared, use_collective

FORMAT = 1
# Dataset of each particle field under /state where it differs from the field's name; ids are not
# stored (rows are ordered by id).
DATASETS = {"pos": "position"}


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
    schema = state.schema
    # One redistribution for every field, in the particle-field schema's rows (mpisim/core/state.py).
    got = rows.gather(state.ids[:n].copy(), state.pack_owned(np.arange(n)))
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
        for field in schema.fields:
            width = schema.width_of(field)
            if field.name == "ids" or width == 0:   # ids: the row order
                continue
            shape = (n_total,) if field.width == 1 else (n_total, width)
            ds = g.create_dataset(DATASETS.get(field.name, field.name), shape=shape, dtype=field.dtype)
            rows.write(ds, got[:, schema.columns[field.name]].astype(field.dtype))
        f.attrs["written"] = written
    if f is not None:
        f.close()
    comm.Barrier()
    if comm.rank == 0:
        os.replace(tmp, path)
    comm.Barrier()
    return time.perf_counter() - t0


def read_checkpoint(path, block=None):
    """(meta dict, fields dict) of a checkpoint, read serially by the calling rank.

    block: (first id, end id) to read only those rows (rows are ordered by id), default all;
    fields: one array per field of the particle-field schema (mpisim/core/state.py): ids, pos (n, 3),
    image, x0, radius, aux (n, n_aux).
    """
    with h5py.File(path, "r") as f:
        meta = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items()}
        if int(meta.get("format", -1)) != FORMAT:
            raise ValueError(f"{path}: unknown checkpoint format {meta.get('format')!r}")
        g = f["state"]
        lo, hi = block if block is not None else (0, g[DATASETS["pos"]].shape[0])
        schema = ParticleSchema(int(meta["n_aux"]))
        fields = {"ids": np.arange(lo, hi, dtype=np.int64)}
        for field in schema.fields:
            width = schema.width_of(field)
            if field.name == "ids":
                continue
            name = DATASETS.get(field.name, field.name)
            fields[field.name] = g[name][lo:hi] if width else np.zeros((hi - lo, 0), dtype=field.dtype)
    return meta, fields
