"""Gradient descent: x^i_{k+1} = x^i_k - alpha grad_i V, computed pair by pair.

It shares the pair path of ``sgd``, so ``sgd`` with b_f = 1 equals ``gd`` bit for bit.
"""
from dataclasses import dataclass

from .._jit import inline
from ._params import RATE
from .base import LearningRate, Scheme
from .momentum import Momentum


@dataclass(frozen=True, kw_only=True)
class Parameters(Momentum, LearningRate):
    """alpha and the momentum option."""


SCHEME = Scheme(name="gd", kind="pair", parameters=Parameters, step_size_key="learning_rate",
                equation="sgd/rcd at b_f = 1")


@inline
def pair_coefficient(params, seed, step, id_lo, id_hi, force):
    """alpha |U'(r)|: every pair contributes its full gradient."""
    return params[RATE] * force
