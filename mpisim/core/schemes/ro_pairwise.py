"""Pairwise random organization (RO) with correlated pair kicks (Hexner & Levine, PRL 118, 020601 (2017):
centre-of-mass conserving RO; Anand, Zhang & Martiniani, arXiv 2505.22933 and sips
``CorrelatedPairwiseRandomKicker``: its correlated form; docs/algorithms.md, "Random organization").

Each overlapping pair (i, j) kicks its two particles in random directions, each by its own size:
x^i += u^{ij}_i n^{ij}_i, x^j -= u^{ij}_j n^{ij}_j, u ~ U(0, eps) with Pearson correlation c
(``pair_correlation``, Gaussian copula) and n = g / |g| unit vectors of d-dimensional Gaussians g_i, g_j
whose components have correlation c_dir (``direction_correlation``). c = c_dir = 1: equal and opposite
kicks (the pair's centre of mass is kept); c = c_dir = 0: independent random kicks.
"""
from dataclasses import dataclass

from .._jit import inline
from ..rng import STREAM_PAIR_DIRECTION, STREAM_PAIR_NORMAL
from ._params import DIR_RHO, DIR_RHO_C, KICK
from .base import KickSize, Scheme, parameter
from .pair_correlation import PairCorrelation, complement, correlated_normals, correlated_uniforms


@dataclass(frozen=True, kw_only=True)
class Parameters(PairCorrelation, KickSize):
    """eps, c and c_dir."""
    direction_correlation: float = parameter(1.0, low=0.0, high=1.0, label="cdir",
                                             doc="correlation of the components of the two kicks' "
                                                 "Gaussian directions; 1: opposite directions")

    def derived(self):
        r = self.direction_correlation
        return {**super().derived(), DIR_RHO: r, DIR_RHO_C: complement(r)}


SCHEME = Scheme(name="ro-pairwise", kind="pair", parameters=Parameters, step_size_key="kick_size",
                equation="Hexner & Levine 2017; arXiv 2505.22933 (correlated RO); docs/algorithms.md")


@inline
def pair_coefficients(params, seed, step, id_lo, id_hi, force):
    """(u_lo, u_hi) = eps (U_lo, U_hi): the kick sizes of the smaller-id and larger-id particle."""
    u_lo, u_hi = correlated_uniforms(params, seed, step, STREAM_PAIR_NORMAL, id_lo, id_hi)
    return params[KICK] * u_lo, params[KICK] * u_hi


@inline
def pair_kick_direction(params, seed, step, id_lo, id_hi, a):
    """(g_lo, g_hi) along axis a: the two particles' Gaussian direction components (the kernel divides by
    |g|); the larger id's kick is -u_hi g_hi / |g_hi|."""
    return correlated_normals(seed, step, STREAM_PAIR_DIRECTION + a, id_lo, id_hi, params[DIR_RHO],
                              params[DIR_RHO_C])
