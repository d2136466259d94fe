"""Energies of perturbed configurations for the flatness measurement (:mod:`analysis.flatness`).

The potentials are the simulator's (:mod:`mpisim.potentials`); the neighbour pairs come from its cell and
Verlet-list code (:func:`mpisim.energy.neighbour_pairs`). ``pair_list_energy`` re-evaluates V over a
fixed pair list, which is exact as long as no unlisted pair can overlap (the caller checks the skin).

Examples
--------
>>> import numpy as np
>>> x = np.array([[0.0, 0.0, 0.0], [0.8, 0.0, 0.0]])
>>> pairs = pair_list(x, np.full(2, 0.5), np.full(3, 10.0), 0.1)
>>> float(pair_list_energy(x, np.zeros_like(x), np.full(2, 0.5), np.full(3, 10.0), pairs, 0))  # (1 - 0.8) / 2
0.09999999999999998
"""
from __future__ import annotations

import math

import numba
import numpy as np

from mpisim.energy import neighbour_pairs
from mpisim.potentials import POTENTIALS
from mpisim.potentials import pair_energy as _u

from .errors import AnalysisError

def potential_code(potential: str) -> int:
    try:
        return POTENTIALS[potential]
    except KeyError:
        raise AnalysisError(f"unknown potential {potential!r}: choose from {', '.join(POTENTIALS)}") from None


def pair_u0(potential: str, sigma: float = 1.0) -> float:
    """U(r = 0) = U at full overlap delta = sigma (the paper's energy scale U_0)."""
    code = potential_code(potential)
    return float(_u(sigma, code))


@numba.njit(cache=True, nogil=True)
def _min_image_dist2(pos, disp, i, j, box):
    r2 = 0.0
    for a in range(pos.shape[1]):
        dx = (pos[j, a] + disp[j, a]) - (pos[i, a] + disp[i, a])
        dx -= box[a] * round(dx / box[a])
        r2 += dx * dx
    return r2


@numba.njit(cache=True, nogil=True)
def pair_list_energy(pos, disp, radii, box, pairs, code):
    """V of ``pos + disp`` counting only the listed pairs (exact if no other pair can overlap)."""
    e = 0.0
    for q in range(pairs.shape[0]):
        i = pairs[q, 0]
        j = pairs[q, 1]
        s = radii[i] + radii[j]
        r2 = _min_image_dist2(pos, disp, i, j, box)
        if r2 < s * s:
            e += _u(s - math.sqrt(r2), code)
    return e


def _check(positions, radii, box):
    pos = np.ascontiguousarray(positions, dtype=np.float64)
    rad = np.ascontiguousarray(radii, dtype=np.float64)
    b = np.ascontiguousarray(box, dtype=np.float64)
    if pos.ndim != 2 or rad.shape != (pos.shape[0],) or b.shape != (pos.shape[1],):
        raise AnalysisError("positions must be [N, d], radii [N] and box [d]")
    return pos, rad, b


def pair_list(positions, radii, box, skin: float) -> np.ndarray:
    """Pairs i < j within the largest contact distance + skin, int64 [npairs, 2] (the simulator's cell
    and Verlet-list code, mpisim.energy.neighbour_pairs)."""
    pos, rad, b = _check(positions, radii, box)
    try:
        return neighbour_pairs(pos, rad, b, float(skin))
    except ValueError:
        raise AnalysisError("box too small for the pair-list cut-off (need L >= 2 (2R + skin))") from None
