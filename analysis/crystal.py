r"""Crystalline order of a snapshot: the ten Wolde - Frenkel bond-order criterion.

Monodisperse spheres can crystallize in long runs at high packing fraction, and a crystal absorbs at
packing fractions where the amorphous system stays active (docs/results.md, "Fig. 3 and Fig. S3"). A run
absorbed above phi_c may therefore be a crystal, not a random-organization absorbing state; this module
says which.

For particle i with its ``num_neighbors`` nearest neighbours (minimum image),
q_lm(i) = mean over neighbours of Y_lm(r_ij / |r_ij|). A bond i -> j is solid-like when the normalized
product d_ij = Re sum_m q_lm(i) q_lm(j)* / (|q_l(i)| |q_l(j)|) exceeds ``q_threshold``; a particle is
solid-like with at least ``solid_threshold`` solid-like bonds (ten Wolde, Ruiz-Montero, Frenkel, J. Chem.
Phys. 104, 9932 (1996); freud's ``SolidLiquid`` with the same neighbours gives the same counts,
tests/analysis/test_analysis_crystal.py). The sums over m are taken through the addition theorem,
sum_m Y_lm(a) Y_lm(b)* = (2l + 1) / (4 pi) P_l(a . b), so no spherical-harmonic convention enters.
Random packings: a few percent solid-like particles; fcc / hcp / bcc crystals: all.

Examples
--------
>>> import numpy as np
>>> cells = np.stack(np.meshgrid(*[np.arange(5)] * 3, indexing="ij"), -1).reshape(-1, 3)
>>> basis = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
>>> fcc = (cells[:, None, :] + basis).reshape(-1, 3) * 1.5
>>> Crystallinity().compute(fcc, np.full(3, 7.5)).solid_fraction
1.0
"""
from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree
from scipy.special import eval_legendre

from mpisim.core.box import wrap_into_box

from .errors import AnalysisError, Computed

#: particles per block of the neighbour-product arrays (memory ~ block * k^3 doubles)
_BLOCK = 4096


class Crystallinity(Computed):
    """Solid-like particles and bonds of one snapshot (``compute(positions, box) -> self``).

    Parameters
    ----------
    l : int
        Order of the bond-orientational harmonics (6 for fcc / hcp / bcc).
    num_neighbors : int
        Nearest neighbours per particle (12: the first shell of fcc / hcp).
    q_threshold : float
        Smallest d_ij of a solid-like bond (0.7).
    solid_threshold : int
        Smallest number of solid-like bonds of a solid-like particle (6).
    """

    def __init__(self, l: int = 6, num_neighbors: int = 12, q_threshold: float = 0.7,
                 solid_threshold: int = 6):
        if l < 1 or num_neighbors < 1 or solid_threshold < 1:
            raise AnalysisError("Crystallinity: l, num_neighbors and solid_threshold must be >= 1")
        self.l, self.num_neighbors = int(l), int(num_neighbors)
        self.q_threshold, self.solid_threshold = float(q_threshold), int(solid_threshold)

    def compute(self, positions, box) -> "Crystallinity":
        x = np.asarray(positions, dtype=np.float64)
        edges = np.asarray(box, dtype=np.float64)
        n, k = len(x), self.num_neighbors
        if x.ndim != 2 or x.shape[1] != len(edges) or n <= k:
            raise AnalysisError(f"Crystallinity: need positions [N > {k}, d] in a box of d edges, "
                                f"got {x.shape} and {edges.shape}")
        x = wrap_into_box(x, edges)
        _, nbr = cKDTree(x, boxsize=edges).query(x, k=k + 1)
        nbr = nbr[:, 1:]                  # the first is the particle itself
        bond = x[nbr] - x[:, None, :]
        bond -= edges * np.round(bond / edges)
        u = bond / np.linalg.norm(bond, axis=-1, keepdims=True)
        # |q_l(i)|^2 and q_l(i) . q_l(j)*, both up to the common factor (2l + 1) / (4 pi k^2)
        self_norm = eval_legendre(self.l, np.einsum("iad,ibd->iab", u, u)).sum(axis=(1, 2))
        cross = np.empty((n, k))
        for lo in range(0, n, _BLOCK):
            hi = min(lo + _BLOCK, n)
            cos = np.einsum("iad,ijbd->ijab", u[lo:hi], u[nbr[lo:hi]])
            cross[lo:hi] = eval_legendre(self.l, cos).sum(axis=(2, 3))
        self.bond_order = cross / np.sqrt(self_norm[:, None] * self_norm[nbr])
        solid_bond = self.bond_order > self.q_threshold
        self.num_connections = solid_bond.sum(axis=1)
        self.solid = self.num_connections >= self.solid_threshold
        # clusters: solid-like particles joined by solid-like bonds
        i = np.repeat(np.arange(n), k)[solid_bond.ravel()]
        j = nbr.ravel()[solid_bond.ravel()]
        both = self.solid[i] & self.solid[j]
        graph = coo_matrix((np.ones(both.sum()), (i[both], j[both])), shape=(n, n))
        _, labels = connected_components(graph, directed=False)
        self._largest = int(np.bincount(labels[self.solid], minlength=1).max())   # 0 without solid particles
        self._computed = True
        return self

    @property
    def solid_fraction(self) -> float:
        """Fraction of solid-like particles."""
        self._need("solid_fraction")
        return float(self.solid.mean())

    @property
    def largest_cluster_size(self) -> int:
        """Particles in the largest cluster of solid-like particles joined by solid-like bonds."""
        self._need("largest_cluster_size")
        return self._largest


def measure_run(run, frame: int = -1, **kwargs) -> Crystallinity:
    """Crystallinity of snapshot ``frame`` of an :class:`analysis.io.Run`."""
    return Crystallinity(**kwargs).compute(run.positions(frame), run.box)
