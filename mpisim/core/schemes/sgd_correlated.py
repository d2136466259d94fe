"""Energy-based SGD with a correlated selection of the two particles of a pair (Anand, Zhang &
Martiniani, arXiv 2505.22933; sips ``CorrelatedProbabilisticPairBatch``; docs/algorithms.md,
"Pair-noise correlation").

Each particle of an overlapping pair (i, j) is in the batch on its own: x^i -= theta^{ij}_i alpha
grad_i U^{ij}, x^j -= theta^{ij}_j alpha grad_j U^{ij}, theta ~ Bernoulli(b_f) each, with correlation c
between theta_i and theta_j: P(both) = b_f^2 + c b_f (1 - b_f), P(only one given side) = b_f (1 - b_f)
(1 - c). One uniform v per pair picks the outcome. c = 1 is sgd bit for bit (both selected iff
v < b_f, v sgd's draw); c = 0 selects the two sides independently.
"""
from dataclasses import dataclass

from .._jit import inline
from ..rng import STREAM_PAIR_UNIFORM, uniform
from ._params import P_BOTH, P_LO, P_LO_HI, RATE
from .base import BatchFraction, LearningRate, Scheme
from .pair_correlation import PairCorrelation


@dataclass(frozen=True, kw_only=True)
class Parameters(PairCorrelation, BatchFraction, LearningRate):
    """alpha, b_f and c."""

    def derived(self):
        b, c = self.batch_fraction, self.pair_correlation
        both = b if c == 1.0 else b * b + c * b * (1.0 - b)      # exactly b_f at c = 1 (sgd's threshold)
        one = b * (1.0 - b) * (1.0 - c)                          # P(theta_lo = 1, theta_hi = 0), and swapped
        return {**super().derived(), P_BOTH: both, P_LO: both + one, P_LO_HI: both + 2.0 * one}


SCHEME = Scheme(name="sgd-correlated", kind="pair", parameters=Parameters, step_size_key="learning_rate",
                equation="arXiv 2505.22933 (correlated SGD); Eq. A10 at c = 1")


@inline
def pair_coefficients(params, seed, step, id_lo, id_hi, force):
    """(theta_lo, theta_hi) alpha |U'(r)|."""
    v = uniform(seed, step, STREAM_PAIR_UNIFORM, id_lo, id_hi)
    g = params[RATE] * force
    if v < params[P_BOTH]:
        return g, g
    if v < params[P_LO]:
        return g, 0.0
    if v < params[P_LO_HI]:
        return 0.0, g
    return 0.0, 0.0
