"""Output files for other programs (docs/file-format.md, "Viewers"): a GSD export that OVITO and
HOOMD-blue's tools read, and an MDAnalysis Universe of any output in one call. Serial; no MPI.

GSD follows HOOMD-blue's conventions: the box is centred on the origin (positions in [-L/2, L/2), ours
are in [0, L)), a 2-d system has L_z = 0 and z = 0, positions are float32. Lengths stay in particle
diameters (the mean diameter is 1).
"""
import os
import shutil
import tempfile
import uuid
import weakref

import h5py
import numpy as np

from . import format as fmt


def type_names(count):
    """Particle type names for ``count`` species: "A", "B", ... (then "T26", "T27", ...)."""
    return [chr(ord("A") + i) if i < 26 else f"T{i}" for i in range(count)]


def _species(part, n):
    species = part["species"][()].astype(np.int64) if "species" in part else np.zeros(n, dtype=np.int64)
    return species, type_names(int(species.max()) + 1 if n else 1)


def hoomd_frame(step, box, positions, images, diameter, typeid, types):
    """One ``gsd.hoomd.Frame`` from our frame: box (d,), positions (N, d) wrapped into [0, L), images
    (N, d), diameter [N], typeid [N], types (names). Positions move to HOOMD's centred box: x - L/2, images
    unchanged (unwrapped = x + image L keeps its meaning). A coordinate that float32 rounds up to +L/2 is
    wrapped to -L/2 with its image raised by one, so that every particle lies in the half-open box."""
    import gsd.hoomd
    box = np.asarray(box, dtype=np.float64)
    n, d = positions.shape
    edges = np.zeros(3)
    edges[:d] = box
    centred = np.zeros((n, 3))
    centred[:, :d] = positions - box / 2
    image = np.zeros((n, 3), dtype=np.int32)
    image[:, :d] = images
    pos32 = centred.astype(np.float32)
    for a in range(d):
        over = pos32[:, a] >= np.float32(box[a] / 2)
        pos32[over, a] = (centred[over, a] - box[a]).astype(np.float32)
        image[over, a] += 1
    frame = gsd.hoomd.Frame()
    frame.configuration.step = int(step)
    frame.configuration.dimensions = d
    frame.configuration.box = [edges[0], edges[1], edges[2], 0.0, 0.0, 0.0]   # L_z = 0 in 2d (HOOMD)
    frame.particles.N = n
    frame.particles.position = pos32
    frame.particles.image = image
    frame.particles.diameter = np.asarray(diameter, dtype=np.float32)
    frame.particles.typeid = np.asarray(typeid, dtype=np.uint32)
    frame.particles.types = list(types)
    return frame


def export_gsd(path, out, frames=None, progress=None):
    """Write frames of the output file ``path`` to the GSD file ``out`` (HOOMD schema; replaced whole, via
    ``out.tmp`` and a rename): per frame the step, box, positions, images, diameters (2 R) and types
    (species "A", "B", ...; "A" for one species). frames: indices (default all). Returns the number of
    frames written. progress: optional callable(done, total)."""
    import gsd.hoomd
    path, out = str(path), str(out)
    tmp = f"{out}.tmp"
    with h5py.File(path, "r") as f:
        part = f[fmt.PARTICLES]
        total = fmt.frame_count(f)
        frames = list(range(total)) if frames is None else list(frames)
        n = part["position/value"].shape[1]
        diameter = 2.0 * part["radius"][()]
        typeid, types = _species(part, n)
        steps = fmt.frame_steps(f)
        try:
            with gsd.hoomd.open(tmp, "w") as traj:
                for i, fr in enumerate(frames):
                    traj.append(hoomd_frame(steps[fr], fmt.read_box(part, fr), part["position/value"][fr],
                                            part["image/value"][fr], diameter, typeid, types))
                    if progress is not None:
                        progress(i + 1, len(frames))
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise
    os.replace(tmp, out)
    return len(frames)


# -------------------------------------------------------------------------------------- MDAnalysis
def write_mdanalysis_view(path, view):
    """Write ``view``: a small HDF5 file that MDAnalysis's H5MD reader reads as the trajectory of the output
    ``path``, without copying it. It holds /particles/trajectory with position/value a virtual dataset
    (frames, N, 3) mapped onto the output's positions (z = 0 in 2d, the fill value), step, time and the box
    as a time-dependent (frames, 3) element (third edge 1 in 2d, as the engine treats a 2-d system), and
    no /observables (MDAnalysis indexes every series by frame number and fails on shorter ones)."""
    source = os.path.abspath(str(path))
    with h5py.File(source, "r") as f:
        part = f[fmt.PARTICLES]
        frames, n, dim = part["position/value"].shape
        if frames == 0:
            raise ValueError(f"{path}: no snapshot stored")
        if dim > 3:
            raise ValueError(f"{path}: a {dim}-d system; MDAnalysis holds 2-d and 3-d systems only")
        steps = fmt.frame_steps(f)
        edges = np.ones((frames, 3))
        if isinstance(part["box/edges"], h5py.Group):
            edges[:, :dim] = part["box/edges/value"][()]
        else:
            edges[:, :dim] = part["box/edges"][()]
    with h5py.File(view, "w") as v:
        fmt.write_h5md_metadata(v, "mpisim.io.viewers", "view of " + source)
        traj = v.create_group(fmt.VIEW_PARTICLES)
        position = traj.create_group("position")
        position["step"] = steps
        position["time"] = steps.astype(np.float64)
        layout = h5py.VirtualLayout(shape=(frames, n, 3), dtype=np.float64)
        layout[:, :, :dim] = h5py.VirtualSource(source, f"{fmt.POSITION}/value", shape=(frames, n, dim))
        position.create_virtual_dataset("value", layout, fillvalue=0.0)
        box = traj.create_group("box")
        box.attrs["dimension"] = np.int32(3)
        box.attrs["boundary"] = fmt.fixed_strings(["periodic"] * 3)
        e = box.create_group("edges")
        e["step"], e["time"] = position["step"], position["time"]
        e["value"] = edges
    return n, dim


def mdanalysis_universe(path):
    """An MDAnalysis Universe of the output file ``path``, 2-d or 3-d, in one call.

    Frames stream from the file through a view (:func:`write_mdanalysis_view`, in a temporary directory
    removed with the Universe). Positions are the wrapped ones, float32, in particle diameters
    (convert_units=False); a 2-d system gets z = 0 and a box [Lx, Ly, 1, 90, 90, 90]. The atoms carry
    ``radii`` (from /particles/all/radius) and ``types`` (species "A", "B", ...); ``ts.data["step"]`` is the
    frame's step and ``ts.time`` equals it. The observables are not attached (read them with
    ``analysis.io``). Needs MDAnalysis (the ``test`` extra)."""
    import MDAnalysis as mda
    tmpdir = tempfile.mkdtemp(prefix="mpisim-view-")
    try:
        view = os.path.join(tmpdir, f"{uuid.uuid4().hex}.h5md")
        n, _ = write_mdanalysis_view(path, view)
        with h5py.File(path, "r") as f:
            part = f[fmt.PARTICLES]
            radius = part["radius"][()]
            typeid, types = _species(part, len(radius))
        # n_atoms given: MDAnalysis's own count (H5MDReader.parse_n_atoms) refuses the convert_units keyword
        u = mda.Universe(view, format="H5MD", topology_format="MINIMAL", n_atoms=n, convert_units=False)
    except BaseException:
        shutil.rmtree(tmpdir, ignore_errors=True)
        raise
    u.add_TopologyAttr("radii", radius)
    u.add_TopologyAttr("types", np.asarray(types, dtype=object)[typeid])
    weakref.finalize(u, shutil.rmtree, tmpdir, True)
    return u
