"""Nonreciprocal pairwise BRO (sips ``NonReciprocalPairwiseBROCList``; docs/algorithms.md, issue 17).

Each overlapping pair (i, j) kicks its two particles apart along the line of centres, each by its own
size: x^i += u^{ij}_i e^{ji}, x^j += u^{ij}_j e^{ij}, with u^{ij}_i, u^{ij}_j ~ U(0, eps) independent.
Particle a's draw in the pair {a, b} is keyed by the ordered ids (a, b), so the two sides differ and the
side of the smaller id equals bro-pairwise's u^{ij}. The kicks no longer cancel: the centre of mass
diffuses.
"""
from dataclasses import dataclass

from .._jit import inline
from ..rng import STREAM_PAIR_UNIFORM, uniform
from ._params import KICK
from .base import KickSize, Scheme


@dataclass(frozen=True, kw_only=True)
class Parameters(KickSize):
    """eps."""


SCHEME = Scheme(name="bro-nonreciprocal", kind="pair", parameters=Parameters, step_size_key="kick_size",
                equation="sips NonReciprocalPairwiseBROCList; docs/algorithms.md")


@inline
def pair_coefficients(params, seed, step, id_lo, id_hi, force):
    """(u_lo, u_hi): the kick sizes of the pair's smaller-id and larger-id particle, eps U[0, 1) each."""
    return (params[KICK] * uniform(seed, step, STREAM_PAIR_UNIFORM, id_lo, id_hi),
            params[KICK] * uniform(seed, step, STREAM_PAIR_UNIFORM, id_hi, id_lo))
