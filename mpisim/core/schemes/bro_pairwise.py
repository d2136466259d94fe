"""Pairwise reciprocal BRO (paper Eq. 1, Algorithm 1).

Each overlapping pair (i, j) gets equal and opposite kicks of size u^{ij} ~ U(0, eps) along the line of
centres; the same u^{ij} for both particles (keyed by the pair's two global ids).
"""
from dataclasses import dataclass

from .._jit import inline
from ..rng import STREAM_PAIR_UNIFORM, uniform
from ._params import KICK
from .base import KickSize, Scheme


@dataclass(frozen=True, kw_only=True)
class Parameters(KickSize):
    """eps."""


SCHEME = Scheme(name="bro-pairwise", kind="pair", parameters=Parameters, step_size_key="kick_size",
                equation="Eq. 1, Algorithm 1")


@inline
def pair_coefficient(params, seed, step, id_lo, id_hi, force):
    """Size of the kick of i away from j (and of j away from i): u^{ij} = eps * U[0, 1)."""
    return params[KICK] * uniform(seed, step, STREAM_PAIR_UNIFORM, id_lo, id_hi)
