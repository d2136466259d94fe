"""Gradient descent plus isotropic Gaussian noise (seed paper 001's isotropic model; docs/algorithms.md).

x^i_{k+1} = x^i_k - alpha grad_i V + sqrt(2 alpha T) xi^i_k on every particle, xi ~ N(0, I_d): the
Euler-Maruyama step of dx = -grad V dt + sqrt(2T) dW with dt = alpha, whose stationary density is
Gibbs, exp(-V/T) (T = alpha sigma^2 / 2 with noise alpha sigma xi). Never absorbed.
"""
import math
from dataclasses import dataclass

from .._jit import inline
from ..rng import STREAM_NOISE, normal
from ._params import RATE, SIGMA
from .base import LearningRate, Scheme, parameter


@dataclass(frozen=True, kw_only=True)
class Parameters(LearningRate):
    """alpha and T."""
    temperature: float = parameter(low=0.0, low_open=True, doc="T: noise sqrt(2 alpha T) xi per step")

    def derived(self):
        return {**super().derived(), SIGMA: math.sqrt(2.0 * self.learning_rate * self.temperature)}


SCHEME = Scheme(name="langevin", kind="pair", parameters=Parameters, step_size_key="learning_rate",
                equation="seed 001: gd + isotropic noise", noise="isotropic", always_moving=True)


@inline
def pair_coefficient(params, seed, step, id_lo, id_hi, force):
    """alpha |U'(r)| (as gd)."""
    return params[RATE] * force


@inline
def noise_kick(params, seed, step, pid, a):
    """sqrt(2 alpha T) xi^i_k along axis a."""
    return params[SIGMA] * normal(seed, step, STREAM_NOISE, pid, a)
