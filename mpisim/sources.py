"""State sources: where a run's particles come from (HOOMD's create_state_from_gsd, not constructor modes).

A source is called on every rank as ``source(config, schema, block)`` with ``block`` = (first id, end id),
the rank's contiguous block of global ids, and returns a ``StartState``: the box and the rows of those
particles in the particle-field schema (mpisim/core/state.py). ``Simulation`` then sends every row to the
rank that owns its position (``Domain.distribute``), so no rank ever holds all N particles.

    RandomStart()                  uniform random positions (system.init = "random")
    OutputFrame(path, frame=-1)    a frame of an earlier output (system.init, system.init_frame)
    Checkpoint(path)               the exact state of OUT.h5.ckpt, with the run's clock (Simulation.resume)

No MPI here: a source reads only its rank's rows (files are opened serially by each rank).
"""
from dataclasses import dataclass

import numpy as np

from .config import ConfigError
from .core.box import storage_width, wrapped_positions
from .core.rng import STREAM_INIT, STREAM_RADII
from .core.rng_arrays import uniforms


@dataclass
class StartState:
    """What a source yields on one rank: box (width,) global edges (core/box.storage_width); rows
    (n, schema.width) of the rank's id block (rank-local); clock: None, or from a checkpoint the global step, absorbed_step, disp_sums and
    max_disp of the run it continues."""
    box: np.ndarray
    rows: np.ndarray
    clock: dict = None


def from_config(config):
    """The source ``system.init`` names: RandomStart, or OutputFrame(system.init, system.init_frame)."""
    s = config.system
    return RandomStart() if s.init == "random" else OutputFrame(s.init, s.init_frame)


class RandomStart:
    """Uniform random positions in the config's box, keyed by (system.init_seed, or system.seed, id): the
    same on any number of ranks. Radii from the config (``particle_radii``)."""

    def __call__(self, config, schema, block):
        s = config.system
        ids = np.arange(*block, dtype=np.int64)
        box = np.asarray(config.box_edges(), dtype=np.float64)
        pos = initial_positions(s.init_seed if s.init_seed >= 0 else s.seed, ids, s.dim, box)
        return StartState(box, _fresh_rows(config, schema, ids, pos))


class OutputFrame:
    """Positions and box of frame ``frame`` (an index into the stored frames; negative counts from the
    end, -1 the last) of an earlier output of the same N and d. Radii come from the config; images, the
    MSD reference and the dynamics' per-particle state start afresh."""

    def __init__(self, path, frame=-1):
        self.path, self.frame = str(path), int(frame)

    def __call__(self, config, schema, block):
        import h5py
        from .io import format as fmt
        n_total, dim = config.system.n, config.system.dim
        lo, hi = block
        from .io.lock import describe_open_error
        try:
            f = h5py.File(self.path, "r")
        except OSError as exc:
            raise ConfigError(f"system.init: {describe_open_error(self.path, exc)}") from None
        with f:
            shape = fmt.position_shape(f)
            if shape is None:
                raise ConfigError(f"system.init: {self.path} is not an mpisim output (no /{fmt.POSITION})")
            frames, n_file, dim_file = shape
            if frames == 0 or n_file != n_total or dim_file != dim:
                raise ConfigError(f"system.init: {self.path} holds {n_file} particles in "
                                  f"{dim_file}d ({frames} frames), the config asks for {n_total} in {dim}d")
            if not -frames <= self.frame < frames:
                raise ConfigError(f"system.init_frame: {self.path} holds {frames} frames; allowed 0 to "
                                  f"{frames - 1}, or -1 to -{frames} counted from the last; got {self.frame}")
            # Rows are ordered by id (docs/file-format.md): this rank reads its contiguous block.
            block_pos = fmt.read_positions(f, self.frame, lo, hi) if hi > lo else np.zeros((0, dim))
            edges = fmt.read_box(f, self.frame)
        box = np.ones(storage_width(dim))
        box[:dim] = edges
        pos = np.zeros((hi - lo, storage_width(dim)))
        pos[:, :dim] = block_pos
        return StartState(box, _fresh_rows(config, schema, np.arange(lo, hi, dtype=np.int64), pos))


class Checkpoint:
    """The exact state stored in a checkpoint (mpisim/io/checkpoint.py): every particle field, the box
    (the config's for checkpoints written before the box was stored) and the run's clock."""

    def __init__(self, path):
        self.path = str(path)

    def __call__(self, config, schema, block):
        from .io import read_checkpoint
        meta, fields = read_checkpoint(self.path, block=block)
        n_total, dim = config.system.n, config.system.dim
        if int(meta["n_total"]) != n_total or int(meta["dim"]) != dim or int(meta["n_aux"]) != schema.n_aux:
            raise ConfigError(f"resume: {self.path} holds N={meta['n_total']}, d={meta['dim']}, "
                              f"n_aux={meta['n_aux']}; the config asks for N={n_total}, d={dim}, "
                              f"n_aux={schema.n_aux}")
        box = meta["box"] if "box" in meta else config.box_edges()
        clock = {k: meta[k] for k in ("step", "absorbed_step", "disp_sums", "max_disp")}
        return StartState(np.asarray(box, dtype=np.float64), schema.pack(**fields), clock)


def _fresh_rows(config, schema, ids, pos):
    """Rows of particles starting at ``pos`` (n, width): no image, x0 = pos, radii from the config, aux 0."""
    n = len(ids)
    return schema.pack(pos=pos, image=np.zeros((n, schema.pos_width), np.int32), x0=pos,
                       radius=particle_radii(config, ids), ids=ids, aux=np.zeros((n, schema.n_aux)))


def particle_radii(config, ids):
    """Radii of the particles with the given global ids (a function of the id and the seed only)."""
    s = config.system
    if s.radii:
        return np.asarray(s.radii, dtype=np.float64)[species_of(config, ids)]
    if s.polydispersity:
        u = uniforms(s.seed, 0, STREAM_RADII, ids, 0)
        return s.radius * (1.0 + s.polydispersity * (2.0 * u - 1.0))
    return np.full(len(ids), s.radius)


def species_of(config, ids):
    """Species index (int32) of the given ids for a system of species (contiguous id blocks in the
    order of system.radii, sized by system.fractions); None for other systems."""
    s = config.system
    if not s.radii:
        return None
    _, fr = config.species_radii()
    counts = np.floor(np.cumsum([0.0] + fr) * s.n + 0.5).astype(np.int64)
    return (np.searchsorted(counts, ids, side="right") - 1).astype(np.int32)


def initial_positions(seed, ids, dim, box):
    """Uniform random positions of the given ids, keyed by (seed, id): the same on any number of ranks.
    Shape (len(ids), core.box.storage_width(dim))."""
    u = np.stack([uniforms(seed, 0, STREAM_INIT, ids, a) * box[a] for a in range(dim)], axis=1)
    return wrapped_positions(u, box, dim)
