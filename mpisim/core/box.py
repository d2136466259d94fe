"""The periodic box: minimum image, wrapping into [0, L).

Positions are stored wrapped into [0, L) with integer image counts; a 2-d system keeps z = 0 and a unit
third edge, so the compiled loops have one fixed inner width (docs/architecture.md).
"""
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


def wrapped_positions(positions, box, dim):
    """Positions (n, dim) wrapped into [0, L) and padded to the engine's three columns (z = 0 in 2d)."""
    pos = np.zeros((len(positions), 3))
    pos[:, :dim] = np.mod(positions, box[:dim])
    # np.mod of a tiny negative coordinate rounds up to L itself
    pos[:, :dim] = np.where(pos[:, :dim] >= box[:dim], 0.0, pos[:, :dim])
    return pos
