"""The pair-noise correlation c, an option of the correlated pairwise schemes (Anand, Zhang & Martiniani,
arXiv 2505.22933; docs/algorithms.md, "Pair-noise correlation").

The two particles of an overlapping pair draw their own noise variables (a kick size, a selection, a
Gaussian), with correlation c between them: c = 0 independent (nonreciprocal) kicks, c = 1 equal and
opposite (reciprocal) kicks. A scheme takes the option by listing ``PairCorrelation`` among the bases of
its ``Parameters``; the draws below are keyed (smaller id, larger id) for the smaller id's variable and
(larger id, smaller id) for the other's fresh part, so both ranks of a pair draw the same two values.

* ``correlated_normals``: z_lo, z_hi ~ N(0, 1) with correlation r: z_hi = r z_lo + sqrt(1 - r^2) w.
* ``correlated_uniforms``: u_lo, u_hi ~ U(0, 1) with Pearson correlation c, through a Gaussian copula:
  u = Phi(z) of correlated normals with r = 2 sin(pi c / 6) (for a Gaussian copula the Pearson correlation
  of the uniforms is (6 / pi) arcsin(r / 2)), as the authors' code (sips ``CorrelatedUniformNoise``).
"""
import math
from dataclasses import dataclass

import numpy as np

from .._jit import inline
from ..rng import normal
from ._params import PAIR_CORR, RHO, RHO_C
from .base import SchemeParameters, parameter


def copula_rho(c):
    """The Gaussian correlation r whose copula gives uniforms of Pearson correlation c; exactly 0 and 1
    at the ends (sin(pi / 6) rounds below 1/2), so that c = 1 gives u_hi = u_lo bit for bit."""
    if c == 1.0:
        return 1.0
    return 2.0 * math.sin(math.pi * c / 6.0)


def complement(r):
    """sqrt(1 - r^2), exactly 0 at r = 1."""
    return math.sqrt(max(1.0 - r * r, 0.0))


@dataclass(frozen=True, kw_only=True)
class PairCorrelation(SchemeParameters):
    """c in [0, 1]: 0 independent kicks of the two particles of a pair, 1 reciprocal (equal and opposite)
    kicks. The kick sizes of BRO and RO use the uniform copula (``RHO``, ``RHO_C``); a scheme with other
    draws adds its own derived values (sgd-correlated, sa-pairwise-correlated)."""
    pair_correlation: float = parameter(slot=PAIR_CORR, low=0.0, high=1.0, label="c",
                                        doc="correlation of the two particles' noise in a pair: "
                                            "0 independent, 1 reciprocal")

    def derived(self):
        r = copula_rho(self.pair_correlation)
        return {**super().derived(), RHO: r, RHO_C: complement(r)}


@inline
def correlated_normals(seed, step, stream, id_lo, id_hi, r, r_c):
    """(z_lo, z_hi): standard normals with correlation r (r_c = sqrt(1 - r^2)); z_lo is the stream's draw
    keyed (id_lo, id_hi), the same draw as a reciprocal scheme's on that stream."""
    z_lo = normal(seed, step, stream, id_lo, id_hi)
    w = normal(seed, step, stream, id_hi, id_lo)
    return z_lo, r * z_lo + r_c * w


@inline
def normal_cdf(z):
    """Phi(z), the standard normal CDF."""
    return 0.5 * math.erfc(-z / np.sqrt(2.0))


@inline
def correlated_uniforms(params, seed, step, stream, id_lo, id_hi):
    """(u_lo, u_hi): U(0, 1) draws with Pearson correlation c = params[PAIR_CORR] (Gaussian copula)."""
    z_lo, z_hi = correlated_normals(seed, step, stream, id_lo, id_hi, params[RHO], params[RHO_C])
    return normal_cdf(z_lo), normal_cdf(z_hi)
