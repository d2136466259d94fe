"""Pair potentials of overlapping soft spheres, as functions of the overlap delta = sigma_ij - r.

sigma_ij = R_i + R_j is the contact distance; lengths are in units of the (mean) diameter 2R.

======== ======================== =========================== ================================
name     U(r), r < sigma_ij        force |dU/dr|                source
======== ======================== =========================== ================================
linear   delta / 2                 1/2                          paper Eq. 3: U = (2R - r) / 2
harmonic delta^2 / 2               delta                        standard soft spheres
hertzian (2/5) delta^(5/2)         delta^(3/2)                  Hertzian contact
======== ======================== =========================== ================================

U = 0 for r >= sigma_ij. With the linear potential the mean BRO kick equals -grad U (paper Eq. 2-3).
"""
import numpy as np

from ._jit import inline

LINEAR, HARMONIC, HERTZIAN = 0, 1, 2
POTENTIALS = {"linear": LINEAR, "harmonic": HARMONIC, "hertzian": HERTZIAN}


@inline
def pair_energy(overlap, potential):
    """U as a function of the overlap delta > 0."""
    if potential == LINEAR:
        return 0.5 * overlap
    if potential == HARMONIC:
        return 0.5 * overlap * overlap
    return 0.4 * overlap * overlap * np.sqrt(overlap)


@inline
def pair_force(overlap, potential):
    """|dU/dr| for overlap delta > 0: the size of -grad_i U, which points from j to i."""
    if potential == LINEAR:
        return 0.5
    if potential == HARMONIC:
        return overlap
    return overlap * np.sqrt(overlap)
