"""The periodic box: minimum image, wrapping into [0, L).

Positions are stored wrapped into [0, L) with integer image counts, in ``storage_width(d)`` columns: a
2-d system keeps z = 0 and a unit third edge, so the compiled loops of d <= 3 have one fixed inner width;
d = 4 to 6 store d columns and take the kernels of core/kernels_wide.py (docs/architecture.md).
"""
import math

import numpy as np

from ._jit import inline


@inline
def minimum_image(d, length, half):
    """Minimum image of a difference of two wrapped coordinates (|d| < length). Odd in d, so the two
    ranks of a pair get bitwise opposite separations."""
    if d > half:
        return d - length
    if d < -half:
        return d + length
    return d


@inline
def wrap(x, L):
    """(x wrapped into [0, L), the number of box lengths crossed). Scalars only: an inlined helper that
    took the position arrays made the update loop ten times slower."""
    k = 0.0
    if x < 0.0 or x >= L:
        k = np.floor(x / L)
        x -= k * L
        if x >= L:          # x was a tiny negative number: x + L rounded to L
            x -= L
            k += 1.0
        if x < 0.0:
            x = 0.0
    return x, k


#: the dimensions the engine runs (config refuses others: system.dim)
DIMENSIONS = (2, 3, 4, 5, 6)
#: volume of the unit d-ball, pi^(d/2) / Gamma(d/2 + 1), in closed form (d = 2, 3 as always written)
BALL_VOLUME = {2: math.pi, 3: 4.0 * math.pi / 3.0, 4: math.pi ** 2 / 2.0, 5: 8.0 * math.pi ** 2 / 15.0,
               6: math.pi ** 3 / 6.0}
#: axes that carry cells and the rank grid; the axes past them are neither binned nor decomposed
BINNED_AXES = 3


def storage_width(dim):
    """Columns of the engine's position arrays for a d-dimensional system: 3 for d <= 3 (z = 0 in 2d),
    else d."""
    return max(BINNED_AXES, int(dim))


def wrap_into_box(positions, box):
    """Positions (n, d) wrapped into [0, L) on every axis, in their own dtype (scipy's periodic cKDTree
    refuses L itself)."""
    pos = np.mod(positions, box)
    return np.where(pos >= box, 0.0, pos)     # np.mod of a tiny negative coordinate rounds up to L itself


def wrapped_positions(positions, box, dim):
    """Positions (n, dim) wrapped into [0, L) and padded to the engine's ``storage_width(dim)`` columns
    (z = 0 in 2d)."""
    pos = np.zeros((len(positions), storage_width(dim)))
    pos[:, :dim] = wrap_into_box(positions, box[:dim])
    return pos
