"""Total energy of a configuration, serially, with the engine's own cell and pair machinery.

For analysis (the flatness measurement of Fig. 4b) and notebooks: no communicator, no simulation.
"""
import numpy as np

from ._jit import njit
from .cells import PairList
from .domain import Domain, SerialComm
from .kernels import _minimum_image
from .potentials import POTENTIALS, pair_energy
from .state import ParticleState, wrapped_positions


def _serial_pairs(positions, radii, box, skin):
    """One-rank state, ghosts and Verlet list of a configuration: (state, box3, pairs, domain)."""
    positions = np.asarray(positions, dtype=np.float64)
    n, dim = positions.shape
    box3 = np.ones(3)
    box3[:dim] = box
    pos = wrapped_positions(positions, box3, dim)
    radii = np.asarray(radii, dtype=np.float64)
    domain = Domain(box3, dim, cutoff=2.0 * float(radii.max()), skin=skin, comm=SerialComm())
    if domain.skin < skin:
        raise ValueError(f"box {list(box3[:dim])} too small for a pair list with skin {skin}")
    state = ParticleState()
    state.set_owned(np.arange(n), pos, np.zeros((n, 3), np.int32), radii, pos)
    domain.borders(state)
    total = state.n_own + state.n_ghost
    domain.cells.build(state.pos, state.shift, box3, state.n_own, total, state.acc.view(np.float64))
    pairs = PairList()
    pairs.build(domain.cells, state.n_own, domain.rcut + skin)
    return state, box3, pairs, domain


def total_energy(positions, radii, box, potential="linear"):
    """V = sum over pairs of U(r_ij) (paper Eq. 3 for "linear").

    positions (N, d) in [0, L) or not (they are wrapped), radii (N,), box (d,) edges; potential: name.
    """
    state, box3, pairs, _ = _serial_pairs(positions, radii, box, 0.0)
    return _energy(state.pos, state.ids, state.radius, state.n_own, box3, pairs.first, pairs.second, pairs.n,
                   POTENTIALS[potential])


def neighbour_pairs(positions, radii, box, skin):
    """Every pair of ids (i, j), i < j, closer than the largest contact distance + skin: int64 (npairs, 2),
    sorted rows (for re-evaluating energies of slightly perturbed configurations)."""
    state, _, pairs, _ = _serial_pairs(positions, radii, box, skin)
    i = state.ids[pairs.first[:pairs.n]]
    j = state.ids[pairs.second[:pairs.n]]
    return np.unique(np.stack([np.minimum(i, j), np.maximum(i, j)], axis=1), axis=0)


@njit
def _energy(pos, ids, radius, n_own, box, first, second, n_pairs, potential):
    """Sum U over listed pairs that overlap, each counted once (by the owner of its smaller id).

    A float sum, not pair_pass's fixed-point one (which rounds each pair to 2^-32): the flatness
    measurement subtracts it from analysis._energy.pair_list_energy's float sums of nearby
    configurations and checks the two agree to 1e-9."""
    total = 0.0
    for k in range(n_pairs):
        i, j = first[k], second[k]
        if (i if ids[i] < ids[j] else j) >= n_own:
            continue
        r2 = 0.0
        for a in range(3):
            d = _minimum_image(pos[i, a] - pos[j, a], box[a], 0.5 * box[a])
            r2 += d * d
        sigma = radius[i] + radius[j]
        if r2 < sigma * sigma:
            total += pair_energy(sigma - np.sqrt(r2), potential)
    return total
