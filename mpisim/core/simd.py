"""Explicit SIMD for the cell search: LLVM vector operations that numba would not emit by itself.

The candidate windows of the cell search (core/cells.py) hold ~3.5 particles each, too short for the
loop vectorizer, and numba's scalar code for a fixed-width window (its negative-index checks, the
branch-free hit collection) costs ~1 ns per candidate; one 4-wide vector comparison per window does
the same work for all its lanes (docs/performance.md, "Large kicks"). The arithmetic is IEEE: each lane
computes (x_i - x_b)^2 + (y_i - y_b)^2 + (z_i - z_b)^2 with the operations, order and rounding of the
scalar expression (no fused multiply-add, no fast-math flags), so a window says exactly what the scalar
test says.

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
        vt = ir.VectorType(ir.DoubleType(), WINDOW)

        def lanes(array_type, array):
            data = context.make_array(array_type)(context, builder, array).data
            return builder.load(builder.bitcast(builder.gep(data, [first]), vt.as_pointer()), align=8)

        dx = builder.fsub(_splat(builder, x, WINDOW), lanes(signature.args[0], ax))
        dy = builder.fsub(_splat(builder, y, WINDOW), lanes(signature.args[1], ay))
        dz = builder.fsub(_splat(builder, z, WINDOW), lanes(signature.args[2], az))
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
