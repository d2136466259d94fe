r"""Distributed static structure factor S(k) (paper Fig. S2; docs/structure-factor.md).

    S(k) = |sum_j exp(-i k . x_j)|^2 / N,   k = 2 pi n / L,  0 < |k| <= k_max,

averaged over the k in each bin of |k|. Every rank works on the particles it holds (rank-local rows);
results are global, identical on all ranks, and do not depend on the number of ranks:

* ``method="direct"``: each rank sums exp(i k . x_j) over its particles with the exact kernel
  (``mpisim.core.sofk.sofk_sums_fixed``), every term rounded to 2^-52 and added in
  int64 limbs; one integer ``Allreduce`` gives the exact global sums.
* ``method="grid"``: each rank assigns its particles to a mesh (CIC or TSC, int64 fixed-point weights),
  an integer ``Reduce_scatter`` gives each rank whole x-planes, a slab-decomposed numpy FFT (one
  ``Alltoall`` transpose; mpi4py-fft needs FFTW, absent here), then the window and aliasing/shot-noise
  correction at each rank's wave vectors.

Both methods sample the same half space of k (every +-k pair once) and share the bins of
``analysis.structure_factor.StructureFactor`` (``mpisim.core.sofk.bin_structure_factor``).
"""
import math
from dataclasses import dataclass

import numpy as np

from ..core.sofk import (ASSIGNMENTS, MESH_SCALE, assign_mesh, bin_structure_factor, default_k_max,
                         fft_size, fixed_to_float, grid_correction, sofk_sums_fixed, wave_vectors)
from .comm import all_to_all_complex, sum_disjoint, sum_int, sum_scatter_int

METHODS = ("direct", "grid")


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
        from .comm import world
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
        self.kvecs, _ = wave_vectors(self.box, self.k_max, self.octant)
        self.nvecs = np.rint(self.kvecs * self.box / (2.0 * math.pi)).astype(np.int64)
        n_max = int(np.abs(self.nvecs).max(initial=0))
        self.mesh = int(mesh) if mesh else fft_size(max(16, 3 * n_max))
        if method == "grid" and 2 * n_max > self.mesh:
            raise ValueError(f"mesh: {self.mesh} points per axis resolve |n| <= {self.mesh // 2} "
                             f"(Nyquist), k_max needs {n_max}; use mesh >= {2 * n_max} (or 0 = automatic)")
        kmag = np.linalg.norm(self.kvecs, axis=1)
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
        s_bin, _ = bin_structure_factor(self.kvecs, s, self.edges)
        return SofkResult(int(step), self.k_centres, self.k_mean, s_bin, self.counts)

    # --------------------------------------------------------------------------------------- direct
    def _direct(self, pos):
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

# ---------------------------------------------------------------------------------------- config
def from_config(section, box, dim, n_total, comm=None):
    """A measurement from a [structure_factor] config section (mpisim.config.StructureFactor)."""
    return StructureFactorMeasurement(box, dim, n_total, k_max=section.k_max, bins=section.bins,
                                      k_min=section.k_min, method=section.method, mesh=section.mesh,
                                      assignment=section.assignment, interlace=section.interlace,
                                      comm=comm)
