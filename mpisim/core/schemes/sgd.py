"""Energy-based SGD (paper Algorithm 3, Eq. A10).

Each overlapping pair is selected with probability b_f; a selected pair moves by -alpha grad U of that
pair alone: x^i -= alpha grad_i U^{ij}, x^j -= alpha grad_j U^{ij}. With b_f = 1 this is gradient descent.
"""
from dataclasses import dataclass

from .._jit import inline
from ..rng import STREAM_PAIR_UNIFORM, uniform
from ._params import BATCH, RATE
from .base import BatchFraction, LearningRate, Scheme
from .momentum import Momentum


@dataclass(frozen=True, kw_only=True)
class Parameters(Momentum, BatchFraction, LearningRate):
    """alpha, b_f and the momentum option."""


SCHEME = Scheme(name="sgd", kind="pair", parameters=Parameters, step_size_key="learning_rate",
                equation="Eq. A10, Algorithm 3")


@inline
def pair_coefficient(params, seed, step, id_lo, id_hi, force):
    """alpha |U'(r)| if the pair is in the batch (theta^{ij} = 1), else 0."""
    if uniform(seed, step, STREAM_PAIR_UNIFORM, id_lo, id_hi) < params[BATCH]:
        return params[RATE] * force
    return 0.0
