"""Gradient descent: x^i_{k+1} = x^i_k - alpha grad_i V, computed pair by pair.

It shares the pair path of ``sgd``, so ``sgd`` with b_f = 1 equals ``gd`` bit for bit.
"""
from .._jit import inline
from ._params import RATE


@inline
def pair_coefficient(params, seed, step, id_lo, id_hi, force):
    """alpha |U'(r)|: every pair contributes its full gradient."""
    return params[RATE] * force
