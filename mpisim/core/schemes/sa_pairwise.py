"""Gaussian stochastic approximation of pairwise BRO and SGD (paper Eq. 6 / A13; Eq. 4 at
alpha = eps / b_f, b_f = 3/4).

x^i_{k+1} = x^i_k - alpha b_f grad_i V + alpha sqrt(b_f - b_f^2) sum_j sqrt(Lambda^{ji}) xi^{ji}.
Lambda^{ji} = grad_i U grad_i U^T has rank one, so sqrt(Lambda^{ji}) xi^{ji} = |U'| z^{ij} e^{ji} with one
scalar z^{ij} ~ N(0, 1) per pair along the unit vector e^{ji} from j to i; reciprocity xi^{ij} = -xi^{ji}
means j moves by the opposite vector.
"""
from dataclasses import dataclass

from .._jit import inline
from ..rng import STREAM_PAIR_NORMAL, normal
from ._params import BATCH, NOISE, RATE
from .base import BatchFraction, LearningRate, Scheme


@dataclass(frozen=True, kw_only=True)
class Parameters(BatchFraction, LearningRate):
    """alpha and b_f of the scheme it approximates."""


SCHEME = Scheme(name="sa-pairwise", kind="pair", parameters=Parameters, step_size_key="learning_rate",
                equation="Eq. 6 / A13 (Eq. 4)")


@inline
def pair_coefficient(params, seed, step, id_lo, id_hi, force):
    """|U'| (alpha b_f + alpha sqrt(b_f - b_f^2) z^{ij})."""
    z = normal(seed, step, STREAM_PAIR_NORMAL, id_lo, id_hi)
    return force * params[RATE] * (params[BATCH] + params[NOISE] * z)
