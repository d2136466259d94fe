"""Pairwise BRO with correlated kick sizes (Anand, Zhang & Martiniani, arXiv 2505.22933; sips
``CorrelatedPairwiseBiasedKicker``; docs/algorithms.md, "Pair-noise correlation").

Each overlapping pair (i, j) kicks its two particles apart along the line of centres, each by its own size:
x^i += u^{ij}_i e^{ji}, x^j += u^{ij}_j e^{ij}, u ~ U(0, eps) each, with Pearson correlation c between
u^{ij}_i and u^{ij}_j (Gaussian copula, ``pair_correlation.correlated_uniforms``). c = 0 is the law of
bro-nonreciprocal (independent sizes), c = 1 that of bro-pairwise (one size for both: u_i = u_j exactly).
"""
from dataclasses import dataclass

from .._jit import inline
from ..rng import STREAM_PAIR_NORMAL
from ._params import KICK
from .base import KickSize, Scheme
from .pair_correlation import PairCorrelation, correlated_uniforms


@dataclass(frozen=True, kw_only=True)
class Parameters(PairCorrelation, KickSize):
    """eps and c."""


SCHEME = Scheme(name="bro-correlated", kind="pair", parameters=Parameters, step_size_key="kick_size",
                equation="arXiv 2505.22933 (correlated BRO); docs/algorithms.md")


@inline
def pair_coefficients(params, seed, step, id_lo, id_hi, force):
    """(u_lo, u_hi) = eps (U_lo, U_hi): the kick sizes of the smaller-id and larger-id particle."""
    u_lo, u_hi = correlated_uniforms(params, seed, step, STREAM_PAIR_NORMAL, id_lo, id_hi)
    return params[KICK] * u_lo, params[KICK] * u_hi
