"""Explicit SIMD for the cell search: LLVM vector operations that numba would not emit by itself.

The candidate windows of the cell search (core/cells.py) hold ~3.5 particles each, too short for the
loop vectorizer, and numba's scalar code for a fixed-width window (its negative-index checks, the
branch-free hit collection) costs ~1 ns per candidate; one 4-wide vector comparison per window does
the same work for all its lanes (docs/performance.md, "Large kicks"). The arithmetic is IEEE: each lane
computes (x_i - x_b)^2 + (y_i - y_b)^2 + (z_i - z_b)^2 with the operations, order and rounding of the
scalar expression (no fused multiply-add, no fast-math flags), so a window says exactly what the scalar
test says.

``within_reach_4x4`` tests a cluster of four slots against a window of four in one comparison of 16
lanes (the cell pass's search on a rank without ghosts, ``cells.scan_clusters``).

Compiled into the calling kernel (``numba.extending.intrinsic``), so numba's disk cache keeps working.
"""
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

#: lanes of ``within_reach``: a vector of four doubles is one AVX2 register (two SSE registers elsewhere)
WINDOW = 4


def _splat(builder, x, lanes):
    vt = ir.VectorType(x.type, lanes)
    v = builder.insert_element(ir.Constant(vt, ir.Undefined), x, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(v, ir.Constant(vt, ir.Undefined),
                                  ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes))


def _window(context, builder, array_type, array, first):
    """The WINDOW doubles array[first:first + WINDOW] as one vector (an unaligned load)."""
    data = context.make_array(array_type)(context, builder, array).data
    vector = ir.VectorType(ir.DoubleType(), WINDOW)
    return builder.load(builder.bitcast(builder.gep(data, [first]), vector.as_pointer()), align=8)


@intrinsic
def within_reach(typingctx, xs, ys, zs, start, xi, yi, zi, reach2):
    """Bit k (k < WINDOW) set iff (xi - xs[start + k])^2 + (yi - ys[start + k])^2 + (zi - zs[start + k])^2
    < reach2: one vector comparison. xs, ys, zs: float64 arrays (contiguous) with WINDOW - 1 readable
    slots past any start used; the caller masks the lanes past its range."""
    if not all(isinstance(a, types.Array) and a.dtype == types.float64 and a.ndim == 1 and a.layout == "C"
               for a in (xs, ys, zs)):
        return None
    sig = types.int64(xs, ys, zs, types.int64, types.float64, types.float64, types.float64, types.float64)

    def codegen(context, builder, signature, args):
        ax, ay, az, first, x, y, z, r2 = args
        dx = builder.fsub(_splat(builder, x, WINDOW), _window(context, builder, signature.args[0], ax, first))
        dy = builder.fsub(_splat(builder, y, WINDOW), _window(context, builder, signature.args[1], ay, first))
        dz = builder.fsub(_splat(builder, z, WINDOW), _window(context, builder, signature.args[2], az, first))
        d2 = builder.fadd(builder.fadd(builder.fmul(dx, dx), builder.fmul(dy, dy)), builder.fmul(dz, dz))
        inside = builder.fcmp_ordered("<", d2, _splat(builder, r2, WINDOW))
        return builder.zext(builder.bitcast(inside, ir.IntType(WINDOW)), ir.IntType(64))
    return sig, codegen


@intrinsic
def lowest_bit(typingctx, mask):
    """Index of the lowest set bit of a non-zero int64 (count trailing zeros: one instruction)."""
    if mask != types.int64:
        return None
    sig = types.int64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 1))
    return sig, codegen


@intrinsic
def within_reach_4x4(typingctx, xs, ys, zs, a, b, sx, sy, sz, reach2):
    """Bit 4 k + l (k, l < WINDOW) set iff (q_k - xs[b + l])^2 + (.. y ..)^2 + (.. z ..)^2 < reach2, where
    q_k = (xs[a + k] - sx, ys[a + k] - sy, zs[a + k] - sz): a cluster of four slots against a window of
    four, one 16-lane comparison. Per lane the IEEE operations of ``within_reach`` from the query point
    xi - sx (x - 0.0 is x), so each lane says what the scalar test says. Same padding rule as there."""
    if not all(isinstance(t, types.Array) and t.dtype == types.float64 and t.ndim == 1 and t.layout == "C"
               for t in (xs, ys, zs)):
        return None
    sig = types.int64(xs, ys, zs, types.int64, types.int64, types.float64, types.float64, types.float64,
                      types.float64)
    lanes = WINDOW * WINDOW

    def codegen(context, builder, signature, args):
        undefined = ir.Constant(ir.VectorType(ir.DoubleType(), WINDOW), ir.Undefined)
        index = ir.VectorType(ir.IntType(32), lanes)
        of_query = ir.Constant(index, [k // WINDOW for k in range(lanes)])    # lane 4 k + l: query k
        of_window = ir.Constant(index, [k % WINDOW for k in range(lanes)])    # lane 4 k + l: slot b + l
        d2 = None
        for axis in range(3):
            array_type, array, shift = signature.args[axis], args[axis], args[5 + axis]
            query = builder.fsub(_window(context, builder, array_type, array, args[3]), _splat(builder, shift, WINDOW))
            d = builder.fsub(builder.shuffle_vector(query, undefined, of_query),
                             builder.shuffle_vector(_window(context, builder, array_type, array, args[4]), undefined,
                                                    of_window))
            square = builder.fmul(d, d)
            d2 = square if d2 is None else builder.fadd(d2, square)
        inside = builder.fcmp_ordered("<", d2, _splat(builder, args[8], lanes))
        return builder.zext(builder.bitcast(inside, ir.IntType(lanes)), ir.IntType(64))
    return sig, codegen
