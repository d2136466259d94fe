"""Rank-local particle state: owned particles in rows [0, n_own), ghosts in [n_own, n_own + n_ghost).

Positions are stored wrapped into [0, L) with integer image counts (unwrapped = pos + image * L) and a
permanent global id. Internally positions always have three columns; a 2-d system keeps z = 0 and a unit
third box edge, so the compiled kernels have one fixed inner loop (docs/architecture.md). Per-particle
state of a dynamics (a momentum velocity, a noise memory) lives in ``aux`` and travels with the particle.
"""
import numpy as np

from ._jit import njit


class ParticleState:
    """Arrays are over-allocated and grow by 25% when needed; rows past n_own + n_ghost are garbage."""

    def __init__(self, n_aux=0, capacity=16):
        self.n_aux = n_aux
        self.n_own = 0
        self.n_ghost = 0
        self._alloc(capacity)

    def _alloc(self, cap):
        self.pos = np.zeros((cap, 3))
        self.shift = np.zeros((cap, 3), dtype=np.int8)
        self.ids = np.zeros(cap, dtype=np.int64)
        self.radius = np.zeros(cap)
        self.image = np.zeros((cap, 3), dtype=np.int32)
        self.x0 = np.zeros((cap, 3))
        self.aux = np.zeros((cap, self.n_aux))
        self.acc = np.zeros((cap, 3), dtype=np.int64)
        self.active = np.zeros(cap, dtype=np.uint8)
        self.travel = np.zeros(cap)   # distance travelled since the pair list was built
        # scratch: a step's reciprocal PGD noise draws (own and ghost rows); as wide as aux, so the
        # schemes without particle state pay nothing for it
        self.noise = np.zeros((cap, self.n_aux))

    FIELDS = ("pos", "shift", "ids", "radius", "image", "x0", "aux", "acc", "active", "travel", "noise")

    @property
    def capacity(self):
        return self.ids.shape[0]

    def reserve(self, n):
        if n <= self.capacity:
            return
        old = {f: getattr(self, f) for f in self.FIELDS}
        used = self.n_own + self.n_ghost
        self._alloc(int(n * 1.25) + 16)
        for f, arr in old.items():
            getattr(self, f)[:used] = arr[:used]

    def set_owned(self, ids, pos, image, radius, x0, aux=None):
        n = len(ids)
        self.n_ghost = 0
        self.reserve(n)
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

    # Migration rows: pos 3, image 3, id, radius, x0 3, aux n_aux.
    @property
    def row_width(self):
        return 11 + self.n_aux

    def pack_owned(self, rows):
        buf = np.empty((len(rows), self.row_width))
        buf[:, 0:3] = self.pos[rows]
        buf[:, 3:6] = self.image[rows]
        buf[:, 6] = self.ids[rows]
        buf[:, 7] = self.radius[rows]
        buf[:, 8:11] = self.x0[rows]
        buf[:, 11:] = self.aux[rows, :self.n_aux]
        return buf

    def remove_owned(self, rows):
        """Drop the given owned rows (ghosts are invalidated)."""
        self.n_ghost = 0
        if len(rows) == 0:
            return
        keep = np.ones(self.n_own, dtype=bool)
        keep[rows] = False
        n = int(keep.sum())
        for f in ("pos", "ids", "radius", "image", "x0", "aux"):
            arr = getattr(self, f)
            arr[:n] = arr[:self.n_own][keep]
        self.n_own = n

    def add_owned(self, buf):
        n = buf.shape[0]
        if n == 0:
            return
        self.n_ghost = 0
        start = self.n_own
        self.reserve(start + n)
        self.pos[start:start + n] = buf[:, 0:3]
        self.image[start:start + n] = buf[:, 3:6]
        self.ids[start:start + n] = buf[:, 6].astype(np.int64)
        self.radius[start:start + n] = buf[:, 7]
        self.x0[start:start + n] = buf[:, 8:11]
        self.aux[start:start + n, :self.n_aux] = buf[:, 11:]
        self.shift[start:start + n] = 0
        self.acc[start:start + n] = 0
        self.n_own += n

    def sort_owned(self, key):
        """Reorder owned rows by key (e.g. cell index) for memory locality; results do not depend on it."""
        order = np.argsort(key[:self.n_own], kind="stable")
        for f in ("pos", "ids", "radius", "image", "x0", "aux"):
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
