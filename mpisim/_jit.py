"""The one place where numba decorators are configured (FBPIC habit).

Kernels are compiled with ``cache=True`` so that a second process (a test run, a sweep) loads them from
disk, and without ``fastmath``: reassociation would let the same pair be computed differently in two
places, which breaks the bit-identity across rank counts (docs/parallel.md).
"""
import numba

njit = numba.njit(cache=True, nogil=True, error_model="numpy")
inline = numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
