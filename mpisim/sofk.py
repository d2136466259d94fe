r"""Distributed static structure factor S(k) (paper Fig. S2; docs/structure-factor.md).

    S(k) = |sum_j exp(-i k . x_j)|^2 / N,   k = 2 pi n / L,  0 < |k| <= k_max,

averaged over the k in each bin of |k|. Every rank works on the particles it holds (rank-local rows);
results are global, identical on all ranks, and do not depend on the number of ranks:

* ``method="direct"``: each rank sums exp(i k . x_j) over its particles with the analysis package's
  kernel (``analysis.structure_factor.sofk_sums_fixed``), every term rounded to 2^-52 and added in
  int64 limbs; one integer ``Allreduce`` gives the exact global sums.
* ``method="grid"``: each rank assigns its particles to a mesh (CIC or TSC, int64 fixed-point weights),
  an integer ``Reduce_scatter`` gives each rank whole x-planes, a slab-decomposed numpy FFT (one
  ``Alltoall`` transpose; mpi4py-fft needs FFTW, absent here), then the window and aliasing/shot-noise
  correction at each rank's wave vectors.

Both methods sample the same half space of k (every +-k pair once) and share the bins of
``analysis.structure_factor.StructureFactor``.
"""
import math
from dataclasses import dataclass

import numpy as np

from .core._jit import njit
from .parallel.comm import all_to_all_complex, sum_disjoint, sum_int, sum_scatter_int

METHODS = ("direct", "grid")
ASSIGNMENTS = {"cic": 2, "tsc": 3}       # name -> order p of the window W = prod sinc^p
MESH_SCALE = 2.0 ** 32                   # fixed-point unit of mesh weights
DEFAULT_SHELLS = 8                       # k_max = 0 means 2 pi 8 / min(L)


@dataclass(frozen=True)
class SofkResult:
    """One measurement (global, on every rank).

    k: bin centres [bins]; k_mean: mean |k| of the wave vectors in each bin (NaN if empty); S: bin
    average of S(k) [bins] (NaN if empty); counts: wave vectors per bin [bins], int64.
    """
    step: int
    k: np.ndarray
    k_mean: np.ndarray
    S: np.ndarray
    counts: np.ndarray


def default_k_max(box, dim):
    """2 pi * DEFAULT_SHELLS / min(L_a): the small-k range of Fig. S2."""
    return 2.0 * math.pi * DEFAULT_SHELLS / float(np.min(np.asarray(box, dtype=np.float64)[:dim]))


def fft_size(n):
    """Smallest even 2^a 3^b 5^c >= n (fast for numpy's pocketfft)."""
    m = max(2, int(n))
    while True:
        r = m
        for p in (2, 3, 5):
            while r % p == 0:
                r //= p
        if r == 1 and m % 2 == 0:
            return m
        m += 1


class StructureFactorMeasurement:
    """S(k) of a configuration whose particles are spread over the ranks of ``comm``. Collective.

    Parameters
    ----------
    box : array [>= dim]; dim : 2 or 3; n_total : N (global)
    k_max : float (inverse diameters; 0 = 2 pi 8 / min L); bins : int; k_min : float
    method : "direct" or "grid"; mesh : grid points per axis (0 = automatic: >= 3 k_max L / 2 pi);
    assignment : "cic" or "tsc"; interlace : grid: average with a mesh shifted by half a cell (cancels
    the odd alias images); octant : sample only n_a >= 0 (freud's set) instead of the half space.
    """

    def __init__(self, box, dim, n_total, k_max=0.0, bins=32, k_min=0.0, method="direct", mesh=0,
                 assignment="tsc", interlace=True, octant=False, comm=None):
        from analysis.structure_factor import sofk_sums
        from .parallel.comm import world
        self.comm = comm if comm is not None else world()
        self.dim = int(dim)
        self.box = np.ascontiguousarray(np.asarray(box, dtype=np.float64)[:self.dim])
        self.n_total = int(n_total)
        self.k_max = float(k_max) if k_max else default_k_max(self.box, self.dim)
        self.k_min, self.bins = float(k_min), int(bins)
        if method not in METHODS:
            raise ValueError(f"method: must be one of {', '.join(METHODS)}, got {method!r}")
        if assignment not in ASSIGNMENTS:
            raise ValueError(f"assignment: must be one of {', '.join(ASSIGNMENTS)}, got {assignment!r}")
        if not 0 <= self.k_min < self.k_max:
            raise ValueError(f"k_min, k_max: need 0 <= k_min < k_max, got {self.k_min}, {self.k_max}")
        self.method, self.assignment, self.octant = method, assignment, bool(octant)
        self.interlace = bool(interlace)
        self.edges = np.linspace(self.k_min, self.k_max, self.bins + 1)
        self.kvecs, _, _ = sofk_sums(np.empty((0, self.dim)), self.box, self.k_max, self.octant)
        self.nvecs = np.rint(self.kvecs * self.box / (2.0 * math.pi)).astype(np.int64)
        n_max = int(np.abs(self.nvecs).max(initial=0))
        self.mesh = int(mesh) if mesh else fft_size(max(16, 3 * n_max))
        if method == "grid" and 2 * n_max > self.mesh:
            raise ValueError(f"mesh: {self.mesh} points per axis resolve |n| <= {self.mesh // 2} "
                             f"(Nyquist), k_max needs {n_max}; use mesh >= {2 * n_max} (or 0 = automatic)")
        kmag = np.linalg.norm(self.kvecs, axis=1)
        from analysis.structure_factor import bin_structure_factor
        self.k_mean, self.counts = bin_structure_factor(self.kvecs, kmag, self.edges)
        self.k_centres = 0.5 * (self.edges[1:] + self.edges[:-1])

    def attrs(self):
        """Parameters stored with the results (docs/file-format.md)."""
        return {"method": self.method, "k_max": self.k_max, "k_min": self.k_min, "bins": self.bins,
                "mesh": self.mesh if self.method == "grid" else 0,
                "assignment": self.assignment if self.method == "grid" else "",
                "interlace": self.interlace and self.method == "grid",
                "octant": self.octant, "n_total": self.n_total, "box": self.box}

    def compute(self, positions, step=0):
        """S(k) of the configuration; ``positions`` [n_local, >= dim]: this rank's particles (wrapped
        or not). Collective; returns a global :class:`SofkResult`."""
        pos = np.ascontiguousarray(np.asarray(positions, dtype=np.float64)[:, :self.dim])
        s = self._direct(pos) if self.method == "direct" else self._grid(pos)
        from analysis.structure_factor import bin_structure_factor
        s_bin, _ = bin_structure_factor(self.kvecs, s, self.edges)
        return SofkResult(int(step), self.k_centres, self.k_mean, s_bin, self.counts)

    # --------------------------------------------------------------------------------------- direct
    def _direct(self, pos):
        from analysis.structure_factor import fixed_to_float, sofk_sums_fixed
        _, acc = sofk_sums_fixed(pos, self.box, self.k_max, self.octant)
        re, im = fixed_to_float(sum_int(self.comm, acc))
        return (re * re + im * im) / self.n_total

    # ----------------------------------------------------------------------------------------- grid
    def _grid(self, pos):
        """Mesh assignment, exact integer Reduce_scatter by x-planes, slab FFT: each rank transforms its
        planes along y (, z), an Alltoall transposes, each rank transforms its columns along x and
        evaluates S at its wave vectors; the per-k values are assembled by adding zeros (exact)."""
        comm, size, rank = self.comm, self.comm.size, self.comm.rank
        m, d, p = self.mesh, self.dim, ASSIGNMENTS[self.assignment]
        nm = 2 if self.interlace else 1
        local = np.zeros((m, nm) + (m,) * (d - 1), dtype=np.int64)   # x first: a rank's planes contiguous
        pos3 = np.zeros((len(pos), 3))
        pos3[:, :d] = pos
        box3 = np.ones(3)
        box3[:d] = self.box
        for i in range(nm):       # the second mesh sees the particles shifted by +H/2 on every axis
            assign_mesh(pos3, box3, d, m, p, 0.5 * i, local[:, i] if d == 3 else local[:, i, :, None])
        planes = _blocks(m, size)
        n_mine = planes[rank + 1] - planes[rank]
        slab = sum_scatter_int(comm, local, np.diff(planes))
        del local
        f = np.fft.rfftn(slab.astype(np.float64) / MESH_SCALE, axes=tuple(range(2, d + 1)))
        del slab
        half = m // 2 + 1
        ncol = half * m ** (d - 2)            # columns (k_y, k_z) of the rfft, flattened
        f = f.reshape(n_mine, nm, ncol)
        cols = _blocks(ncol, size)
        c0, c1 = cols[rank], cols[rank + 1]
        if size > 1:
            f = _transpose(comm, f, planes, cols)   # -> [m, nm, c1 - c0]: whole x-columns
        g = np.fft.fft(f, axis=0)
        del f
        n = self.nvecs.copy()
        n[n[:, -1] < 0] *= -1                 # rfft stores n_d >= 0; S(-k) = S(k)
        col = n[:, 1] if d == 2 else np.mod(n[:, 1], m) * half + n[:, 2]
        mine = (col >= c0) & (col < c1)
        i0, cm = np.mod(n[mine, 0], m), col[mine] - c0
        fk = g[i0, 0, cm]
        if nm == 2:
            fk = 0.5 * (fk + g[i0, 1, cm] * np.exp(1j * np.pi * n[mine].sum(axis=1) / m))
        s = np.zeros(len(n))
        s[mine] = grid_correction((fk.real ** 2 + fk.imag ** 2) / self.n_total, self.nvecs[mine], m, p,
                                  nm == 2)
        return sum_disjoint(comm, s)          # each k is non-zero on one rank only


def _blocks(n, parts):
    return [(n * b) // parts for b in range(parts + 1)]


def _transpose(comm, f, planes, cols):
    """[planes of this rank, nm, all columns] -> [all planes, nm, columns of this rank] (Alltoallv)."""
    size, rank = comm.size, comm.rank
    n_mine, nm = f.shape[0], f.shape[1]
    send = np.concatenate([f[:, :, cols[q]:cols[q + 1]].ravel() for q in range(size)])
    scounts = np.array([n_mine * nm * (cols[q + 1] - cols[q]) for q in range(size)])
    rcounts = np.array([(planes[q + 1] - planes[q]) * nm * (cols[rank + 1] - cols[rank]) for q in range(size)])
    recv = all_to_all_complex(comm, send, scounts, rcounts)
    return recv.reshape(planes[-1], nm, cols[rank + 1] - cols[rank])


def grid_correction(s_mesh, nvecs, m, order, interlaced):
    r"""S at the integer wave vectors ``nvecs`` [nk, d] from the mesh estimate S_mesh = |F_mesh|^2 / N.

    S_mesh(k) is the true S convolved with the aliased window:
    S_mesh = sum_n |W(k + 2 pi n / H)|^2 S(k + 2 pi n / H). Assuming S = 1 at the aliased images
    (|k + 2 pi n / H| >= 2 pi / H - k_max, beyond the structure), S_mesh = |W|^2 S + C(k) - |W|^2 with
    C(k) = sum_n |W(k + 2 pi n/H)|^2 = prod_a c(sin(pi n_a / m)) (Hockney & Eastwood; Jing 2005,
    ApJ 620, 559, Eq. 20), c(s) = 1 - 2 s^2 / 3 (CIC), 1 - s^2 + 2 s^4 / 15 (TSC); hence
    S = (S_mesh - C) / |W|^2 + 1, with W = prod_a sinc(pi n_a / m)^p.

    Interlaced (two meshes, the second of particles shifted by h = H/2 on every axis; Sefusatti et al.
    2016, MNRAS 460, 3624): F = (F_1 + F_2 e^{i k.h}) / 2 keeps only the images with sum_a n_a even,
    so C = (prod_a c_a + prod_a c'_a) / 2 with c'_a = sum_n (-1)^n sinc^{2p}(pi n_a / m + pi n)
    (summed for |n| <= 40).
    """
    # per-axis factors depend on the integer n_a only: tabulate them for |n_a| <= m / 2
    half = m // 2
    x = np.pi * np.arange(-half, half + 1) / m
    w2_axis = _sinc(x) ** (2 * order)
    s2 = np.sin(x) ** 2
    c_axis = 1.0 - 2.0 * s2 / 3.0 if order == 2 else 1.0 - s2 + 2.0 * s2 * s2 / 15.0
    rows = nvecs + half
    w2 = np.prod(w2_axis[rows], axis=1)
    c = np.prod(c_axis[rows], axis=1)
    if interlaced:
        images = np.arange(-40, 41)
        alt_axis = ((-1.0) ** images * _sinc(x[:, None] + np.pi * images) ** (2 * order)).sum(axis=1)
        c = 0.5 * (c + np.prod(alt_axis[rows], axis=1))
    return (s_mesh - c) / w2 + 1.0


def _sinc(x):
    safe = np.where(x == 0, 1.0, x)
    return np.where(x == 0, 1.0, np.sin(safe) / safe)


@njit
def assign_mesh(pos, box, dim, m, order, shift, mesh):
    """Add each particle's CIC (order 2) or TSC (order 3) weights to ``mesh`` [m, m, m or 1] in units of
    2^-32 (int64: exact, order-free), positions shifted by ``shift`` cells. pos [n, 3] wrapped or not;
    axes >= dim are ignored."""
    idx = np.zeros((3, 3), dtype=np.int64)
    w = np.zeros((3, 3))
    npt = np.ones(3, dtype=np.int64)
    for p in range(pos.shape[0]):
        for a in range(3):
            if a >= dim:
                npt[a] = 1
                idx[a, 0] = 0
                w[a, 0] = 1.0
                continue
            u = pos[p, a] / box[a] * m + shift
            if order == 2:
                i0 = np.floor(u)
                f = u - i0
                npt[a] = 2
                idx[a, 0] = np.int64(i0) % m
                idx[a, 1] = (np.int64(i0) + 1) % m
                w[a, 0] = 1.0 - f
                w[a, 1] = f
            else:
                i0 = np.floor(u + 0.5)           # nearest node
                f = u - i0                       # in [-1/2, 1/2)
                npt[a] = 3
                for q in range(3):
                    idx[a, q] = (np.int64(i0) - 1 + q) % m
                w[a, 0] = 0.5 * (0.5 - f) ** 2
                w[a, 1] = 0.75 - f * f
                w[a, 2] = 0.5 * (0.5 + f) ** 2
        for qx in range(npt[0]):
            for qy in range(npt[1]):
                wxy = w[0, qx] * w[1, qy]
                for qz in range(npt[2]):
                    mesh[idx[0, qx], idx[1, qy], idx[2, qz]] += np.int64(np.rint(wxy * w[2, qz] * MESH_SCALE))


# ------------------------------------------------------------------------------------- schedule
def due(section, step):
    """Whether the [structure_factor] section asks for a measurement at ``step``."""
    return bool(section.every and step % section.every == 0) or step in section.steps


def from_config(section, box, dim, n_total, comm=None):
    """A measurement from a [structure_factor] config section (mpisim.config.StructureFactor)."""
    return StructureFactorMeasurement(box, dim, n_total, k_max=section.k_max, bins=section.bins,
                                      k_min=section.k_min, method=section.method, mesh=section.mesh,
                                      assignment=section.assignment, interlace=section.interlace,
                                      comm=comm)


# ----------------------------------------------------------------------------------- saved frames
def parse_frames(spec, n_frames):
    """Frame indices from ``all`` or a comma list of integers and slices (``0,5,-1``, ``10:20:2``).
    Raises ValueError naming --frames and the allowed range."""
    allowed = f"'all', or comma-separated integers in [-{n_frames}, {n_frames}) and slices like 0:10:2"
    if n_frames == 0:
        raise ValueError("--frames: the file holds no snapshot")
    if spec is None or spec.strip() == "all":
        return list(range(n_frames))
    out = []
    for item in spec.split(","):
        item = item.strip()
        try:
            if ":" in item:
                parts = [int(x) if x.strip() else None for x in item.split(":")]
                if len(parts) > 3 or parts[-1] == 0 and len(parts) == 3:
                    raise ValueError
                out.extend(range(n_frames)[slice(*parts)])
            else:
                i = int(item)
                if not -n_frames <= i < n_frames:
                    raise ValueError
                out.append(i % n_frames)
        except ValueError:
            raise ValueError(f"--frames: bad item {item!r}; allowed: {allowed}") from None
    if not out:
        raise ValueError(f"--frames: {spec!r} selects no frame; allowed: {allowed}")
    return out


def sofk_frames(path, frames, comm=None, **options):
    """S(k) of frames of an mpisim output file; each rank reads a contiguous block of particle rows
    (collective mpio reads when h5py has MPI). Returns (measurement, [SofkResult]) on every rank; the
    measurement is that of the last frame (one per distinct box).

    options: the keyword arguments of :class:`StructureFactorMeasurement` (not box, dim, n_total)."""
    import h5py
    from .parallel.comm import id_blocks, world
    from .io.h5md import parallel_h5py, read_box
    comm = comm if comm is not None else world()
    collective = comm.size > 1 and parallel_h5py()
    kwargs = {"driver": "mpio", "comm": comm} if collective else {}
    results, meas = [], {}
    with h5py.File(path, "r", **kwargs) as f:
        part = f["particles/all"]
        dim = int(part["box"].attrs["dimension"])
        ds = part["position/value"]
        n_total = ds.shape[1]
        steps = part["position/step"][:]
        blocks = id_blocks(n_total, comm.size)
        a, b = int(blocks[comm.rank]), int(blocks[comm.rank + 1])
        for fr in frames:
            box = np.asarray(read_box(part, fr), dtype=np.float64)
            key = tuple(box)
            if key not in meas:
                meas[key] = StructureFactorMeasurement(box, dim, n_total, comm=comm, **options)
            if collective:
                with ds.collective:
                    x = ds[fr, a:b, :]
            else:
                x = ds[fr, a:b, :]
            results.append(meas[key].compute(x, step=int(steps[fr])))
    return meas[key], results
