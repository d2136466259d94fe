"""Gaussian stochastic approximation of pairwise BRO/SGD with correlated pair noise (Anand, Zhang &
Martiniani, arXiv 2505.22933; sips ``CorrelatedPairwiseNoise``; docs/algorithms.md, "Pair-noise
correlation").

As sa-pairwise (Eq. 6 / A13), but the two particles of a pair draw their own Gaussian, with correlation c:
x^i += |U'| alpha (b_f + sqrt(b_f - b_f^2) z^{ij}_i) e^{ji}, x^j += |U'| alpha (b_f + sqrt(b_f - b_f^2)
z^{ij}_j) e^{ij}, z_hi = c z_lo + sqrt(1 - c^2) w. z_lo is sa-pairwise's z^{ij}: c = 1 is sa-pairwise bit
for bit; c = 0 gives independent noise (the mean drift -alpha b_f grad V is the same for every c).
"""
from dataclasses import dataclass

from .._jit import inline
from ..rng import STREAM_PAIR_NORMAL
from ._params import BATCH, NOISE, PAIR_CORR, RATE, SA_C
from .base import BatchFraction, LearningRate, Scheme
from .pair_correlation import PairCorrelation, complement, correlated_normals


@dataclass(frozen=True, kw_only=True)
class Parameters(PairCorrelation, BatchFraction, LearningRate):
    """alpha, b_f and c."""

    def derived(self):
        return {**super().derived(), SA_C: complement(self.pair_correlation)}


SCHEME = Scheme(name="sa-pairwise-correlated", kind="pair", parameters=Parameters,
                step_size_key="learning_rate",
                equation="arXiv 2505.22933 (correlated stochastic dynamics); Eq. 6 / A13 at c = 1")


@inline
def pair_coefficients(params, seed, step, id_lo, id_hi, force):
    """|U'| alpha (b_f + sqrt(b_f - b_f^2) z) for each side."""
    z_lo, z_hi = correlated_normals(seed, step, STREAM_PAIR_NORMAL, id_lo, id_hi, params[PAIR_CORR],
                                    params[SA_C])
    g = force * params[RATE]
    return g * (params[BATCH] + params[NOISE] * z_lo), g * (params[BATCH] + params[NOISE] * z_hi)
