"""core/simd.py: the vector window of the cell search says exactly what the scalar test says, lane by lane
(the same IEEE operations in the same order: no fused multiply-add), including distances equal to the
reach, where a rounding difference would show; and the cell list keeps the slots the windows read past
the last one."""
import numpy as np
import pytest

from mpisim.core._jit import njit
from mpisim.core.cells import SCAN_PAD, CellList
from mpisim.core.simd import WINDOW, lowest_bit, within_reach, within_reach_4x4


@njit
def _windows(xs, ys, zs, starts, xi, yi, zi, reach2):
    out = np.empty(starts.shape[0], dtype=np.int64)
    for k in range(starts.shape[0]):
        out[k] = within_reach(xs, ys, zs, starts[k], xi, yi, zi, reach2)
    return out


@njit
def _clusters(xs, ys, zs, a, b, shift, reach2):
    return within_reach_4x4(xs, ys, zs, a, b, shift[0], shift[1], shift[2], reach2)


@njit
def _lowest(masks):
    out = np.empty(masks.shape[0], dtype=np.int64)
    for k in range(masks.shape[0]):
        out[k] = lowest_bit(masks[k])
    return out


def _scalar_mask(xs, ys, zs, start, xi, yi, zi, reach2):
    mask = 0
    for k in range(WINDOW):
        dx, dy, dz = xi - xs[start + k], yi - ys[start + k], zi - zs[start + k]
        mask |= int(dx * dx + dy * dy + dz * dz < reach2) << k
    return mask


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_window_equals_the_scalar_test(seed):
    rng = np.random.default_rng(seed)
    n = 400
    xs, ys, zs = (rng.uniform(0, 3, n + WINDOW) for _ in range(3))
    xi, yi, zi = rng.uniform(0, 3, 3)
    starts = np.arange(n)
    # the reach at the exact distance of some candidates: a lane that rounds differently flips there
    d2 = (xi - xs) ** 2 + (yi - ys) ** 2 + (zi - zs) ** 2
    for reach2 in [1.0, d2[7], d2[100], np.nextafter(d2[200], np.inf), np.nextafter(d2[300], 0.0)]:
        got = _windows(xs, ys, zs, starts, xi, yi, zi, reach2)
        want = [_scalar_mask(xs, ys, zs, s, xi, yi, zi, reach2) for s in starts]
        assert got.tolist() == want
        assert 0 < sum(bin(int(m)).count("1") for m in got) < WINDOW * n


def test_window_on_exact_integer_distances():
    # 3-4-0 and 2-3-6 triangles: distance^2 25 and 49 exactly
    xs = np.array([3.0, 2.0, 0.0, 1.0, 9.0, 9.0, 9.0, 9.0])
    ys = np.array([4.0, 3.0, 0.0, 0.0, 9.0, 9.0, 9.0, 9.0])
    zs = np.array([0.0, 6.0, 0.0, 0.0, 9.0, 9.0, 9.0, 9.0])
    starts = np.array([0])
    assert _windows(xs, ys, zs, starts, 0.0, 0.0, 0.0, 25.0)[0] == 0b1100
    assert _windows(xs, ys, zs, starts, 0.0, 0.0, 0.0, np.nextafter(25.0, 99.0))[0] == 0b1101
    assert _windows(xs, ys, zs, starts, 0.0, 0.0, 0.0, np.nextafter(49.0, 99.0))[0] == 0b1111


def test_lowest_bit():
    masks = np.array([1, 2, 12, 8, 0b1010000, 1 << 40, (1 << 62) | (1 << 5)], dtype=np.int64)
    assert _lowest(masks).tolist() == [0, 1, 2, 3, 4, 40, 5]


def test_binning_coordinates_keep_the_slots_read_past_the_last():
    rng = np.random.default_rng(4)
    n = 50
    pos = rng.uniform(0, 4, (n, 3))
    shift = np.zeros((n, 3), np.int8)
    cells = CellList([4, 4, 4], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0, 0, 0], [3, 3, 3])
    box = np.full(3, 4.0)
    cells.build(pos, shift, box, n, n, np.zeros((n + 1, 3)))       # too short: the list's own rows
    assert cells.sorted_pos.shape[0] == 3 and cells.sorted_pos.shape[1] >= n + SCAN_PAD
    long_enough = np.zeros((n + SCAN_PAD, 3))
    cells.build(pos, shift, box, n, n, long_enough)                  # the scratch itself
    assert np.shares_memory(cells.sorted_pos, long_enough)
    for a in range(3):
        np.testing.assert_array_equal(np.sort(cells.sorted_pos[a, :n]), np.sort(pos[:, a]))
        np.testing.assert_array_equal(cells.sorted_pos[a, :n], pos[cells.order[:n], a])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_cluster_window_equals_the_scalar_test(seed):
    # lane 4 k + l: query slot a + k moved by -shift against slot b + l, as the scalar test from the moved
    # query point (the search's ranges across a periodic end), at reaches equal to some lanes' distances
    rng = np.random.default_rng(seed)
    n = 64
    xs, ys, zs = (rng.uniform(0, 3, n + WINDOW) for _ in range(3))
    for shift in [(0.0, 0.0, 0.0), (3.0, 0.0, -3.0), (-3.0, 3.0, 0.0)]:
        for a, b in [(0, 1), (5, 30), (40, 2), (60, 60)]:
            d2 = [(xs[a + k] - shift[0] - xs[b + l]) ** 2 + (ys[a + k] - shift[1] - ys[b + l]) ** 2
                  + (zs[a + k] - shift[2] - zs[b + l]) ** 2 for k in range(WINDOW) for l in range(WINDOW)]
            for reach2 in [1.0, d2[5], np.nextafter(d2[9], np.inf), np.nextafter(d2[14], 0.0), 30.0]:
                want = sum(int(d < reach2) << lane for lane, d in enumerate(d2))
                assert _clusters(xs, ys, zs, a, b, np.array(shift), reach2) == want
