"""The dynamics as the kernels see it: scheme id, potential id and the parameter vector."""
from .potentials import POTENTIALS
from .schemes import SCHEMES
from .schemes._params import DIM, N_PARAMS


class DynamicsParams:
    """Compiled-kernel view of a validated ``config.Dynamics`` (scheme name, its ``parameters`` and the
    potential); every value comes from the scheme's declaration (``mpisim/core/schemes/``), and ``dim``, the
    dimension of the system (read by the random-organization kernels)."""

    def __init__(self, dynamics, dim=3, width=3):
        """dim: the system's dimension; width: position columns (core/box.storage_width(d)); the per-axis
        aux columns of momentum and memory noise grow to it for d > 3."""
        spec = SCHEMES[dynamics.scheme]
        p = dynamics.parameters
        self.scheme = spec.id
        self.kind = spec.kind
        self.potential = POTENTIALS[dynamics.potential]
        self.params = p.kernel_vector(N_PARAMS)
        self.params[DIM] = dim                # the hooks that draw random directions (RO) need d
        self.n_aux = max(p.n_aux, width) if p.n_aux else 0     # velocity or noise memory columns
        # Momentum, memory noise and isotropic noise (docs/algorithms.md): the kernel apply_step and, for
        # reciprocal pair noise, noise_pair_pass, which reads the ghosts' aux.
        self.momentum = p.moving              # particles may move without overlapping (counted)
        self.correlated_noise = spec.noise == "memory"
        self.always_moving = spec.always_moving   # noise on every particle: never absorbed
        self.reciprocal_noise = p.pair_noise
