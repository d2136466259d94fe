"""Energies of perturbed configurations for the flatness measurement (:mod:`analysis.flatness`).

The potentials, the neighbour pairs and the energy kernel are the simulator's core
(:mod:`mpisim.core.energy`); ``pair_list_energy`` re-evaluates V over a fixed pair list, which is exact as
long as no unlisted pair can overlap (the caller checks the skin).
"""
from __future__ import annotations

import numpy as np

from mpisim.core.energy import neighbour_pairs, pair_list_energy  # noqa: F401  (re-exported)
from mpisim.core.potentials import POTENTIALS
from mpisim.core.potentials import pair_energy as _u

from .errors import AnalysisError


def potential_code(potential: str) -> int:
    try:
        return POTENTIALS[potential]
    except KeyError:
        raise AnalysisError(f"unknown potential {potential!r}: choose from {', '.join(POTENTIALS)}") from None


def pair_u0(potential: str, sigma: float = 1.0) -> float:
    """U(r = 0) = U at full overlap delta = sigma (the paper's energy scale U_0)."""
    return float(_u(sigma, potential_code(potential)))


def pair_list(positions, radii, box, skin: float) -> np.ndarray:
    """Pairs i < j within the largest contact distance + skin, int64 [npairs, 2]."""
    pos = np.ascontiguousarray(positions, dtype=np.float64)
    rad = np.ascontiguousarray(radii, dtype=np.float64)
    b = np.ascontiguousarray(box, dtype=np.float64)
    if pos.ndim != 2 or rad.shape != (pos.shape[0],) or b.shape != (pos.shape[1],):
        raise AnalysisError("positions must be [N, d], radii [N] and box [d]")
    try:
        return neighbour_pairs(pos, rad, b, float(skin))
    except ValueError:
        raise AnalysisError("box too small for the pair-list cut-off (need L > 2 (2R + skin))") from None
