"""Cell list and Verlet list against brute-force all pairs (scipy's periodic k-d tree as the reference)."""
import numpy as np
import pytest
from scipy.spatial import cKDTree

from mpisim.core.cells import PairList
from mpisim.parallel.domain import Domain
from mpisim.parallel.comm import SerialComm
from mpisim.core.state import ParticleState


def _owned_partners(state, pairs):
    """(owned id, partner id) for every owned end of every listed pair. A pair across a periodic face
    on one rank is listed as (i, ghost of j) and (ghost of i, j): each owned end exactly once."""
    out = []
    for a, b in zip(pairs.first[:pairs.n], pairs.second[:pairs.n]):
        if a < state.n_own:
            out.append((state.ids[a], state.ids[b]))
        if b < state.n_own:
            out.append((state.ids[b], state.ids[a]))
    return out


@pytest.mark.parametrize("dim,n,edge,skin", [(3, 800, 9.0, 0.0), (3, 800, 9.0, 0.3), (2, 600, 14.0, 0.2),
                                             (3, 60, 2.05, 0.0), (2, 40, 2.2, 0.1)])
def test_pair_list_is_all_pairs_within_reach(dim, n, edge, skin):
    rng = np.random.default_rng(dim * n)
    box = np.array([edge, edge, edge if dim == 3 else 1.0])
    pos = np.zeros((n, 3))
    pos[:, :dim] = rng.uniform(0, edge, size=(n, dim))
    radius = rng.uniform(0.4, 0.5, size=n)
    domain = Domain(box, dim, cutoff=1.0, skin=skin, comm=SerialComm())
    state = ParticleState()
    state.set_owned(np.arange(n), pos, np.zeros((n, 3), np.int32), radius, pos)
    domain.borders(state)
    domain.cells.build(state.pos, state.shift, box, state.n_own, state.n_own + state.n_ghost,
                       state.acc.view(np.float64))
    pairs = PairList(capacity=8)  # too small on purpose: the build must grow it
    pairs.build(domain.cells, state.n_own, domain.reach)
    listed = _owned_partners(state, pairs)
    got = set(listed)
    assert len(got) == len(listed), "a particle sees the same partner twice"
    tree = cKDTree(pos[:, :dim], boxsize=box[:dim])
    both_ways = lambda ps: {(a, b) for p in ps for a, b in (p, p[::-1])}  # noqa: E731
    assert both_ways(tree.query_pairs(domain.reach * (1 - 1e-12))) <= got
    # Nothing listed beyond the reach (plus the rounding margin).
    assert got <= both_ways(tree.query_pairs(domain.reach * (1 + 1e-9)))
