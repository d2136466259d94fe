"""Total energy V = sum over pairs of U(r_ij) (paper Eq. 3 for the linear potential), serially.

For the analysis package (the flatness measurement of Fig. 4b) and notebooks: no communicator, no
simulation. The neighbour pairs come from a periodic k-d tree (scipy's ``cKDTree`` with ``boxsize``):
the serial periodic images. ``pair_list_energy`` is the one float energy kernel; the engine's pair pass
sums the same U in fixed point instead, in the same loop as the kicks (``kernels.pair_pass``), so that a
logged step costs one pass and its energy is independent of the rank count.

>>> import numpy as np
>>> x = np.array([[0.0, 0.0, 0.0], [0.8, 0.0, 0.0]])
>>> pairs = neighbour_pairs(x, np.full(2, 0.5), np.full(3, 10.0), 0.1)
>>> float(pair_list_energy(x, np.zeros_like(x), np.full(2, 0.5), np.full(3, 10.0), pairs, 0))  # (1-0.8)/2
0.09999999999999998
"""
import math

import numpy as np

from ._jit import njit
from .box import wrap_into_box
from .potentials import POTENTIALS, pair_energy


def neighbour_pairs(positions, radii, box, skin):
    """Every pair of ids (i, j), i < j, whose minimum-image distance is at most the largest contact
    distance + skin: int64 (npairs, 2), rows sorted. positions (N, d) (wrapped here), radii (N,), box (d,).
    ValueError when that reach is not below half the smallest edge (the periodic image is then not unique)."""
    from scipy.spatial import cKDTree
    box = np.asarray(box, dtype=np.float64)
    radii = np.asarray(radii, dtype=np.float64)
    reach = 2.0 * float(radii.max()) + float(skin)
    if reach >= 0.5 * float(box.min()):
        raise ValueError(f"box {list(box)} too small for a pair reach of {reach:g} (need L > 2 reach)")
    tree = cKDTree(wrap_into_box(np.asarray(positions, dtype=np.float64), box), boxsize=box)
    pairs = tree.query_pairs(reach, output_type="ndarray").astype(np.int64)
    if len(pairs) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    pairs.sort(axis=1)
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]


@njit
def pair_list_energy(pos, disp, radii, box, pairs, potential):
    """V of ``pos + disp`` summed over the listed pairs that overlap (exact when no unlisted pair can
    overlap); pos, disp (N, d), box (d,), pairs int64 (npairs, 2), potential: id (``POTENTIALS``)."""
    total = 0.0
    for q in range(pairs.shape[0]):
        i = pairs[q, 0]
        j = pairs[q, 1]
        r2 = 0.0
        for a in range(pos.shape[1]):
            d = (pos[j, a] + disp[j, a]) - (pos[i, a] + disp[i, a])
            d -= box[a] * np.rint(d / box[a])
            r2 += d * d
        sigma = radii[i] + radii[j]
        if r2 < sigma * sigma:
            total += pair_energy(sigma - math.sqrt(r2), potential)
    return total


def total_energy(positions, radii, box, potential="linear"):
    """V = sum over pairs of U(r_ij). positions (N, d), radii (N,), box (d,) edges; potential: a name."""
    pos = np.ascontiguousarray(positions, dtype=np.float64)
    box = np.ascontiguousarray(box, dtype=np.float64)
    radii = np.ascontiguousarray(radii, dtype=np.float64)
    pairs = neighbour_pairs(pos, radii, box, 0.0)
    return pair_list_energy(pos, np.zeros_like(pos), radii, box, pairs, POTENTIALS[potential])
