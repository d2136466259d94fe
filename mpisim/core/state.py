"""Rank-local particle state: owned particles in rows [0, n_own), ghosts in [n_own, n_own + n_ghost).

Positions are stored wrapped into [0, L) with integer image counts (unwrapped = pos + image * L) and a
permanent global id. Internally positions have ``width`` = core/box.storage_width(d) columns: three for
d <= 3 (a 2-d system keeps z = 0 and a unit third box edge, so the compiled kernels have one fixed inner
loop), d for d = 4 to 6 (docs/architecture.md). Per-particle
state of a dynamics (a momentum velocity, a noise memory) lives in ``aux`` and travels with the particle.

What travels with a particle is defined once, in ``PARTICLE_FIELDS``: a state source's rows at start-up,
migration between ranks and checkpoints all pack and unpack by that schema (``ParticleSchema``).
"""
from dataclasses import dataclass

import numpy as np

AUX = -1   # width of the aux field: the dynamics' n_aux (DynamicsParams.n_aux)
POS = -2   # width of a per-axis field: the storage width (3 for d <= 3, else d; core/box.storage_width)


@dataclass(frozen=True)
class Field:
    """One per-particle quantity that travels with its particle: the ParticleState attribute ``name``, its
    dtype and its number of columns (1: a plain (n,) array; AUX: n_aux columns)."""
    name: str
    dtype: type
    width: int


# The one particle-field schema (docs/architecture.md). Position first: Domain.distribute reads the owner
# from columns 0-2 of a row. Everything else a ParticleState holds (ghost shifts, accumulators, activity,
# travel, noise draws) is rebuilt or recomputed, never sent or stored.
PARTICLE_FIELDS = (Field("pos", np.float64, POS),     # wrapped position, box units
                   Field("image", np.int32, POS),     # periodic image counts
                   Field("x0", np.float64, POS),      # unwrapped position at step 0 (the MSD reference)
                   Field("radius", np.float64, 1),
                   Field("ids", np.int64, 1),         # permanent global id
                   Field("aux", np.float64, AUX))     # per-particle dynamics state


class ParticleSchema:
    """The row layout of ``PARTICLE_FIELDS`` for ``n_aux`` aux columns and ``width`` position columns
    (core/box.storage_width): one float64 row per particle (int32 images and ids below 2^53 are exact in
    float64), field after field.

    ``columns[name]`` is the column (an int, for one-column fields) or slice of a field, so that
    ``rows[:, columns[name]]`` has the field's shape.
    """

    def __init__(self, n_aux, width=3):
        self.n_aux = n_aux
        self.pos_width = width
        self.fields = PARTICLE_FIELDS
        self.columns = {}
        k = 0
        for f in self.fields:
            w = self.width_of(f)
            self.columns[f.name] = k if f.width == 1 else slice(k, k + w)
            k += w
        self.width = k

    def width_of(self, field):
        return {AUX: self.n_aux, POS: self.pos_width}.get(field.width, field.width)

    @property
    def names(self):
        return tuple(f.name for f in self.fields)

    def pack(self, **values):
        """Rows (n, width) from one array per field (all fields required), each of its field's shape."""
        missing = set(self.names) - set(values)
        if missing or len(values) != len(self.fields):
            raise ValueError(f"ParticleSchema.pack needs exactly the fields {self.names}; "
                             f"missing {sorted(missing)}, extra {sorted(set(values) - set(self.names))}")
        n = len(values["ids"])
        rows = np.empty((n, self.width))
        for f in self.fields:
            rows[:, self.columns[f.name]] = values[f.name]
        return rows

    def unpack(self, rows):
        """{field name: array of the field's dtype and shape} of rows (n, width)."""
        return {f.name: rows[:, self.columns[f.name]].astype(f.dtype) for f in self.fields}


class ParticleState:
    """Arrays are over-allocated and grow by 5% when needed (HEADROOM); rows past n_own + n_ghost are garbage.
    The OWNED_ONLY fields have rows for the owned particles only."""

    def __init__(self, n_aux=0, capacity=16, width=3):
        """width: position columns (core/box.storage_width(d))."""
        self.n_aux = n_aux
        self.width = width
        self.schema = ParticleSchema(n_aux, width)
        self.n_own = 0
        self.n_ghost = 0
        self._alloc(capacity)

    def _alloc(self, cap):
        w = self.width
        self.pos = np.zeros((cap, w))
        self.shift = np.zeros((cap, w), dtype=np.int8)
        self.ids = np.zeros(cap, dtype=np.int64)
        self.radius = np.zeros(cap)
        self.image = np.zeros((cap, w), dtype=np.int32)
        self.x0 = np.zeros((cap, w))
        self.aux = np.zeros((cap, self.n_aux))
        self.acc = np.zeros((cap, w), dtype=np.int64)
        self.active = np.zeros(cap, dtype=np.uint8)
        self.travel = np.zeros(cap)   # distance travelled since the pair list was built
        # scratch: a step's reciprocal PGD noise draws (own and ghost rows); as wide as aux, so the
        # schemes without particle state pay nothing for it
        self.noise = np.zeros((cap, self.n_aux))

    FIELDS = ("pos", "shift", "ids", "radius", "image", "x0", "aux", "acc", "active", "travel", "noise")
    # Fields that only owned rows use (the update, the MSD, migration and checkpoints): no rows for ghosts
    # (44 bytes per ghost row; docs/performance.md, "Memory").
    OWNED_ONLY = ("image", "x0", "travel")
    # Room above the rows asked for when an array grows: a rank's rows change only at list builds
    # (migration, ghosts), and by little.
    HEADROOM = 1.05

    @property
    def capacity(self):
        """Rows (owned and ghost) the arrays hold."""
        return self.ids.shape[0]

    def reserve(self, n, owned=False):
        """Room for n rows (owned and ghost); with owned, n owned rows (the OWNED_ONLY fields too)."""
        for f in self.FIELDS:
            own_only = f in self.OWNED_ONLY
            arr = getattr(self, f)
            if (own_only and not owned) or arr.shape[0] >= n:
                continue
            keep = self.n_own if own_only else self.n_own + self.n_ghost
            grown = np.zeros((int(n * self.HEADROOM) + 16,) + arr.shape[1:], dtype=arr.dtype)
            grown[:keep] = arr[:keep]
            setattr(self, f, grown)

    def set_owned(self, ids, pos, image, radius, x0, aux=None):
        n = len(ids)
        self.n_ghost = 0
        self.reserve(n, owned=True)
        self.n_own = n
        self.ids[:n] = ids
        self.pos[:n] = pos
        self.image[:n] = image
        self.radius[:n] = radius
        self.x0[:n] = x0
        self.shift[:n] = 0
        self.acc[:n] = 0
        if aux is not None and self.n_aux:
            self.aux[:n, :self.n_aux] = aux

    def set_owned_rows(self, rows):
        """Replace the owned particles by rows in the schema's layout (ghosts are invalidated)."""
        self.n_own = 0
        self.n_ghost = 0
        self.add_owned(rows)

    def pack_owned(self, rows):
        """The owned rows ``rows`` (indices) in the schema's layout: what migration sends."""
        buf = np.empty((len(rows), self.schema.width))
        for f in self.schema.fields:
            buf[:, self.schema.columns[f.name]] = getattr(self, f.name)[rows]
        return buf

    def remove_owned(self, rows):
        """Drop the given owned rows (distinct indices; ghosts are invalidated). The last owned rows that
        stay move into the holes, so the cost is O(len(rows)), not O(n_own): row order changes, and
        results do not depend on it (as ``sort_owned``)."""
        self.n_ghost = 0
        if len(rows) == 0:
            return
        rows = np.asarray(rows, dtype=np.int64)
        n = self.n_own - len(rows)
        holes = np.sort(rows[rows < n])
        leaving_tail = np.zeros(self.n_own - n, dtype=bool)
        leaving_tail[rows[rows >= n] - n] = True
        movers = n + np.flatnonzero(~leaving_tail)        # as many as holes
        for f in self.schema.names:
            arr = getattr(self, f)
            arr[holes] = arr[movers]
        self.n_own = n

    def add_owned(self, buf):
        """Append rows in the schema's layout to the owned particles (ghosts are invalidated)."""
        n = buf.shape[0]
        if n == 0:
            return
        self.n_ghost = 0
        start = self.n_own
        self.reserve(start + n, owned=True)
        for f in self.schema.fields:
            getattr(self, f.name)[start:start + n] = buf[:, self.schema.columns[f.name]]
        self.shift[start:start + n] = 0
        self.acc[start:start + n] = 0
        self.n_own += n

    def sort_owned(self, key):
        """Reorder owned rows by key (e.g. cell index) for memory locality; results do not depend on it."""
        order = np.argsort(key[:self.n_own], kind="stable")
        for f in self.schema.names:
            arr = getattr(self, f)
            arr[:self.n_own] = arr[:self.n_own][order]
        self.n_ghost = 0

    def owned(self, dim):
        """Copies of the owned particles sorted by id: ids, positions (n, dim), images, radii, aux."""
        n = self.n_own
        o = np.argsort(self.ids[:n], kind="stable")
        return (self.ids[:n][o], self.pos[:n, :dim][o], self.image[:n, :dim][o], self.radius[:n][o],
                self.x0[:n, :dim][o], self.aux[:n, :self.n_aux][o])

    @property
    def nbytes(self):
        return sum(getattr(self, f).nbytes for f in self.FIELDS)
