"""SGD pair selection plus PGD's temporally correlated noise (docs/algorithms.md, "spgd").

x^i_{k+1} = x^i_k - alpha sum_j theta^{ij}_k grad_i U^{ij} + (the noise of ``pgd``), theta^{ij}_k = 1 with
probability b_f (paper Algorithm 3). The noise acts on every active (overlapping) particle or pair,
selected or not: the two noise sources are independent.
"""
from dataclasses import dataclass

from .._jit import inline
from . import sgd
from .base import BatchFraction, LearningRate, Scheme
from .pgd import CorrelatedNoise, innovation, memory_kick  # noqa: F401 (hooks: the noise of pgd)


@dataclass(frozen=True, kw_only=True)
class Parameters(CorrelatedNoise, BatchFraction, LearningRate):
    """alpha, b_f and pgd's noise."""


SCHEME = Scheme(name="spgd", kind="pair", parameters=Parameters, step_size_key="learning_rate",
                equation="Algorithm 3 + pgd noise", noise="memory")


@inline
def pair_coefficient(params, seed, step, id_lo, id_hi, force):
    """alpha |U'| if the pair is in the batch, else 0 (as sgd)."""
    return sgd.pair_coefficient(params, seed, step, id_lo, id_hi, force)
