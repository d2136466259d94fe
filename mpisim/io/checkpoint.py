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

Each state dataset carries a checksum (``sum64``, ``array_checksum``), and ``verify_checkpoint`` checks a
checkpoint against its output and config before a resume reads it (docs/file-format.md, "Verified on
resume").
"""
import os
import time

import h5py
import numpy as np

from ..core.box import storage_width
from ..core.state import ParticleSchema
from . import format as fmt
from .h5md import BlockRows, now, open_shared, use_collective

FORMAT = 1
# Rows per read of the serial verification (bounds its memory: about 100 MB at 3 columns).
VERIFY_ROWS = 1 << 21
# Dataset of each particle field under /state where it differs from the field's name; ids are not
# stored (rows are ordered by id).
DATASETS = {"pos": "position"}


def checkpoint_path(output):
    return f"{output}.ckpt"


def replacement_path(output):
    """Where ``--overwrite`` builds the new output until its run is complete: ``OUT.h5.new`` (its
    checkpoint ``OUT.h5.new.ckpt``), renamed over ``OUT.h5`` then (docs/file-format.md, "One writer per
    output")."""
    return f"{output}.new"


def resume_target(output):
    """The file a resume of ``output`` continues: ``OUT.h5.new`` if an interrupted ``--overwrite`` left it
    with its checkpoint, else ``output``. Serial."""
    side = replacement_path(output)
    return side if os.path.isfile(side) and os.path.isfile(checkpoint_path(side)) else str(output)


def has_state(f):
    """Whether the open file ``f`` holds a checkpoint's particle state (its positions)."""
    return fmt.checkpoint_dataset(DATASETS["pos"]) in f


def array_checksum(values, first=0):
    """sum64 of a block of an array: sum_i w_i (2 i + 1) mod 2^64, over the bit patterns w_i of its
    elements (unsigned integers of the element's size) in row-major order, i the element's index in the
    whole dataset (``first``: the index of the block's first element).

    Blocks add (mod 2^64), so ranks checksum their own rows and one sum combines them. The weight 2 i + 1
    is odd, hence invertible mod 2^64: any change of one element (a flipped byte, bit or word) changes the
    sum, with certainty; changes of several elements cancel only by accident (about 2^-64).
    """
    a = np.ascontiguousarray(values)
    words = a.view(f"u{a.itemsize}").reshape(-1).astype(np.uint64)
    weights = np.arange(first, first + words.size, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    return int(np.sum(words * weights, dtype=np.uint64))


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
        g = f.create_group(fmt.CHECKPOINT_STATE)
    for field in schema.fields:
        width = schema.width_of(field)
        if field.name == "ids" or width == 0:   # ids: the row order
            continue
        values = got[:, schema.columns[field.name]].astype(field.dtype)
        # The checksum of the whole dataset: each writer's block, summed over ranks (identical everywhere,
        # as parallel HDF5 wants every attribute).
        first = rows.block[0] * width if rows.writes else 0
        total = comm.allreduce(array_checksum(values, first) if rows.writes else 0) % 2 ** 64
        if rows.writes:
            shape = (n_total,) if field.width == 1 else (n_total, width)
            ds = g.create_dataset(DATASETS.get(field.name, field.name), shape=shape, dtype=field.dtype)
            rows.write(ds, values)
            ds.attrs["sum64"] = np.uint64(total)
    if rows.writes:
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
    fields: one array per field of the particle-field schema (mpisim/core/state.py): ids, pos (n, width),
    image, x0, radius, aux (n, n_aux).
    """
    with h5py.File(path, "r") as f:
        meta = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items()}
        if int(meta.get("format", -1)) != FORMAT:
            raise ValueError(f"{path}: unknown checkpoint format {meta.get('format')!r}")
        g = f[fmt.CHECKPOINT_STATE]
        lo, hi = block if block is not None else (0, g[DATASETS["pos"]].shape[0])
        schema = ParticleSchema(int(meta["n_aux"]), storage_width(int(meta["dim"])))
        fields = {"ids": np.arange(lo, hi, dtype=np.int64)}
        for field in schema.fields:
            width = schema.width_of(field)
            if field.name == "ids":
                continue
            name = DATASETS.get(field.name, field.name)
            fields[field.name] = g[name][lo:hi] if width else np.zeros((hi - lo, 0), dtype=field.dtype)
    return meta, fields


def verify_checkpoint(path, dim, box, radii_of=None):
    """What is wrong with the checkpoint at ``path`` (a list of short phrases; empty if nothing), read
    serially in blocks of ``VERIFY_ROWS`` rows (rank 0, before a resume).

    Checks the ``sum64`` checksum of every state dataset (checkpoints written before checksums existed
    have none and are not checked), finite positions inside the box [0, L) along each of the ``dim``
    axes, finite x0 and aux, and, with ``radii_of(ids) -> radii``, radii bitwise equal to the config's.
    """
    problems = []
    with h5py.File(path, "r") as f:
        g = f[fmt.CHECKPOINT_STATE]
        n = g[DATASETS["pos"]].shape[0]
        sums = {name: 0 for name in g}
        edges = np.asarray(box, dtype=np.float64)[:dim]
        outside = radius_mismatch = 0
        for lo in range(0, n, VERIFY_ROWS):
            hi = min(n, lo + VERIFY_ROWS)
            for name in g:
                block = g[name][lo:hi]
                width = int(np.prod(block.shape[1:], dtype=np.int64))
                sums[name] = (sums[name] + array_checksum(block, lo * width)) % 2 ** 64
                if block.dtype.kind == "f" and not np.all(np.isfinite(block)):
                    problems.append(f"non-finite values in /{fmt.CHECKPOINT_STATE}/{name}")
                if name == DATASETS["pos"]:
                    pos = block[:, :dim]
                    outside += int(np.sum(~((pos >= 0) & (pos < edges))))
                if name == "radius" and radii_of is not None:
                    radius_mismatch += int(np.sum(block != radii_of(np.arange(lo, hi, dtype=np.int64))))
        for name in g:
            stored = g[name].attrs.get("sum64")
            if stored is not None and int(stored) != sums[name]:
                problems.append(f"/{fmt.CHECKPOINT_STATE}/{name} does not match its checksum (damaged)")
        if outside:
            problems.append(f"{outside} position coordinate(s) outside the box [0, {np.array2string(edges)})")
        if radius_mismatch:
            problems.append(f"{radius_mismatch} radii differ from the config's")
    # One line per kind of problem, in a stable order.
    return list(dict.fromkeys(problems))
