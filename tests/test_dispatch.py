"""The registry and numba's integer dispatch (mpisim/core/schemes/__init__.py, dispatch.py): every
registered scheme id reaches its own module's hooks, in the dispatchers and in the compiled kernels."""
import numpy as np
import pytest

from mpisim.core import kernels
from mpisim.core.fixedpoint import FIXED_SCALE
from mpisim.core.schemes import BY_ID, SCHEMES, dispatch
from mpisim.core.schemes._params import N_PARAMS

# Distinct values in every slot, so that hooks reading different slots give different results (slot 9 is
# the dimension, read by the random-organization kernels; 11..13 rise, as sgd-correlated's thresholds).
PARAMS = np.array([0.11, 0.23, 0.37, 0.41, 0.0, 0.53, 0.61, 0.29, 0.0, 3.0, 0.43, 0.31, 0.47, 0.67, 0.71,
                   0.0])
assert len(PARAMS) == N_PARAMS
SEED, STEP, LO, HI, FORCE = 12, 345, 6, 78, 0.25


def test_ids_are_registry_positions():
    assert [s.id for s in BY_ID] == list(range(len(SCHEMES)))
    assert [s.name for s in BY_ID] == list(SCHEMES)


@pytest.mark.parametrize("name", list(SCHEMES))
def test_each_branch_names_its_own_module(name):
    """The generated chains call scheme k's hook under ``if scheme == k`` (a mis-wired chain could
    give equal numbers for schemes whose hooks coincide, e.g. gd and pgd)."""
    s = SCHEMES[name]
    module = s.module.__name__.rsplit(".", 1)[-1]
    hook = "pair_coefficient" if s.reciprocal else "pair_coefficients"
    assert f"if scheme == {s.id}:\n        return _{module}_{hook}(" in dispatch.SOURCES[hook]
    if s.kind == "particle":
        assert f"if scheme == {s.id}:\n        return _{module}_particle_multiplier(" in \
            dispatch.SOURCES["particle_multiplier"]
    for hook in ("pair_kick_direction", "particle_kick_size", "particle_kick_direction"):
        assert (f"if scheme == {s.id}:\n        return _{module}_{hook}(" in dispatch.SOURCES[hook]) == \
            hasattr(s.module, hook)


@pytest.mark.parametrize("name", list(SCHEMES))
def test_dispatchers_return_the_hooks_values(name):
    s = SCHEMES[name]
    m = s.module
    assert dispatch.is_two_sided(s.id) == (not s.reciprocal)
    if s.reciprocal:
        assert dispatch.pair_coefficient(s.id, PARAMS, SEED, STEP, LO, HI, FORCE) == \
            m.pair_coefficient(PARAMS, SEED, STEP, LO, HI, FORCE)
    else:
        assert dispatch.pair_coefficients(s.id, PARAMS, SEED, STEP, LO, HI, FORCE) == \
            m.pair_coefficients(PARAMS, SEED, STEP, LO, HI, FORCE)
    assert dispatch.is_particle_scheme(s.id) == (s.kind == "particle")
    expected = m.particle_multiplier(PARAMS, SEED, STEP, LO) if s.kind == "particle" else 1.0
    assert dispatch.particle_multiplier(s.id, PARAMS, SEED, STEP, LO) == expected
    assert dispatch.has_memory_noise(s.id) == (s.noise == "memory")
    assert dispatch.has_isotropic_noise(s.id) == (s.noise == "isotropic")
    if s.noise == "memory":
        assert dispatch.innovation(s.id, SEED, STEP, LO, 1) == m.innovation(SEED, STEP, LO, 1)
        assert dispatch.memory_kick(s.id, PARAMS, 0.7, -0.2) == m.memory_kick(PARAMS, 0.7, -0.2)
    if s.noise == "isotropic":
        assert dispatch.noise_kick(s.id, PARAMS, SEED, STEP, LO, 2) == m.noise_kick(PARAMS, SEED, STEP, LO, 2)
    assert dispatch.has_random_direction(s.id) == hasattr(m, "pair_kick_direction")
    if hasattr(m, "pair_kick_direction"):
        assert dispatch.pair_kick_direction(s.id, PARAMS, SEED, STEP, LO, HI, 1) == \
            m.pair_kick_direction(PARAMS, SEED, STEP, LO, HI, 1)
    assert dispatch.has_particle_kick(s.id) == hasattr(m, "particle_kick_direction")
    if hasattr(m, "particle_kick_direction"):
        assert dispatch.particle_kick_size(s.id, PARAMS, SEED, STEP, LO) == m.particle_kick_size(PARAMS, SEED, STEP, LO)
        assert dispatch.particle_kick_direction(s.id, SEED, STEP, LO, 2) == m.particle_kick_direction(SEED, STEP, LO, 2)


@pytest.mark.parametrize("swap", [False, True])
@pytest.mark.parametrize("name", list(SCHEMES))
def test_kernels_apply_each_schemes_own_hooks(name, swap):
    """pair_pass and apply_step on one overlapping pair: the displacements are the hooks' values, to the
    bit (whatever the storage order of the pair)."""
    s = SCHEMES[name]
    m = s.module
    box = np.array([10.0, 10.0, 10.0])
    pos = np.array([[5.3, 4.9, 5.2], [4.8, 5.1, 4.7]])
    ids = np.array([HI, LO], dtype=np.int64)
    if swap:
        pos, ids = pos[::-1].copy(), ids[::-1].copy()
    first, second = np.array([0], np.int32), np.array([1], np.int32)
    acc = np.zeros((2, 3), np.int64)
    active = np.zeros(2, np.int32)
    params = PARAMS.copy()
    params[4] = 0.0      # no momentum: the plain scheme
    kernels.pair_pass(s.id, params, 0, SEED, STEP, pos, ids, np.full(2, 0.5), 2, box, first, second, 1, acc,
                      active, np.zeros(kernels.N_COUNTERS, np.int64), True)
    d = pos[0] - pos[1]
    r = np.sqrt(d @ d)
    force = 0.5          # linear potential: |U'| = 1/2 in diameter units
    if s.reciprocal:
        c_lo = c_hi = m.pair_coefficient(params, SEED, STEP, LO, HI, force)
    else:
        c_lo, c_hi = m.pair_coefficients(params, SEED, STEP, LO, HI, force)
    c0, c1 = (c_lo, c_hi) if ids[0] < ids[1] else (c_hi, c_lo)
    if hasattr(m, "pair_kick_direction"):
        # random organization: +c_lo g_lo / |g_lo| to the smaller id, -c_hi g_hi / |g_hi| to the larger
        g = np.array([m.pair_kick_direction(params, SEED, STEP, LO, HI, a) for a in range(3)])
        g_lo, g_hi = g[:, 0] * (c_lo / np.sqrt(g[:, 0] @ g[:, 0])), g[:, 1] * (c_hi / np.sqrt(g[:, 1] @ g[:, 1]))
        k_lo, k_hi = np.rint(g_lo * FIXED_SCALE).astype(np.int64), -np.rint(g_hi * FIXED_SCALE).astype(np.int64)
        k0, k1 = (k_lo, k_hi) if ids[0] < ids[1] else (k_hi, k_lo)
        np.testing.assert_array_equal(acc[0], k0)
        np.testing.assert_array_equal(acc[1], k1)
    else:
        np.testing.assert_array_equal(acc[0], np.rint(c0 / r * d * FIXED_SCALE).astype(np.int64))
        np.testing.assert_array_equal(acc[1], -np.rint(c1 / r * d * FIXED_SCALE).astype(np.int64))
    if s.noise:
        return           # the noise models add their own draws (tests/test_noise_models.py)
    expected = pos.copy()
    for k in range(2):
        mult = m.particle_multiplier(params, SEED, STEP, ids[k]) if s.kind == "particle" else 1.0
        expected[k] += mult * (acc[k] / FIXED_SCALE)
        if hasattr(m, "particle_kick_direction"):       # one random-organization kick per active particle
            g = np.array([m.particle_kick_direction(SEED, STEP, ids[k], a) for a in range(3)])
            expected[k] += (m.particle_kick_size(params, SEED, STEP, ids[k]) / np.sqrt(g @ g)) * g
    kernels.apply_step(s.id, params, SEED, STEP, 3, pos, np.zeros((2, 3), np.int32), ids, 2, box, acc, active,
                       np.zeros((2, 0)), np.zeros((2, 0)), np.zeros(2), np.zeros(kernels.N_DISP, np.int64))
    np.testing.assert_array_equal(pos, expected)


def test_a_declaration_that_breaks_its_promise_is_refused():
    s = SCHEMES["rcd"]
    broken = type(s)(name="x", kind="particle", parameters=s.parameters, step_size_key="learning_rate",
                     equation="-", module=SCHEMES["sgd"].module)       # no particle_multiplier
    with pytest.raises(TypeError, match="particle_multiplier"):
        broken.check()
    with pytest.raises(TypeError, match="step_size_key"):
        type(s)(name="x", kind="pair", parameters=s.parameters, step_size_key="kick_size", equation="-",
                module=s.module).check()


_CACHED_KERNEL = """
import numpy as np
from mpisim.core import kernels
box = np.full(3, 5.0)
pos = np.array([[1.0, 1.0, 1.0], [1.5, 1.0, 1.0]])
acc, active = np.zeros((2, 3), np.int64), np.zeros(2, np.uint8)
kernel = kernels.pair_pass.for_scheme({scheme})
kernel(np.zeros({n_params}), 0, 1, 2, pos, np.arange(2), np.full(2, 0.5), 2, box, np.zeros(1, np.int32),
       np.ones(1, np.int32), 1, acc, active, np.zeros(3, np.int64), True)
print(sum(kernel.stats.cache_hits.values()), sum(kernel.stats.cache_misses.values()), int(active.sum()))
"""


def test_each_scheme_kernel_is_compiled_and_cached_apart(tmp_path):
    """``_jit.per_scheme``: scheme k's kernel is its own closure, compiled once and then loaded from numba's
    disk cache by a new process (the cache keys a closure by its frozen scheme id: a key that ignored it
    would hand scheme 0's code to scheme 1, a key that changed per process would recompile every run)."""
    import os
    import subprocess
    import sys
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))

    def run(scheme):
        code = _CACHED_KERNEL.format(scheme=scheme, n_params=N_PARAMS)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        return tuple(int(v) for v in out.stdout.split())

    assert run(0) == (0, 1, 2)          # compiled (and written to the cache), the pair overlaps
    assert run(1) == (0, 1, 2)          # another scheme: its own compilation, not scheme 0's entry
    assert run(0) == (1, 0, 2)          # loaded from the cache
    assert kernels.pair_pass.for_scheme(0) is kernels.pair_pass.for_scheme(0)
    assert kernels.pair_pass.for_scheme(0) is not kernels.pair_pass.for_scheme(1)
