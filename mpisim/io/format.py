"""The mpisim output file, defined once (docs/file-format.md): H5MD 1.1 paths, the layout of a new file,
serial readers and a serial writer.

Everything that touches an output file goes through this module: the parallel writer
(:mod:`mpisim.io.h5md`, which adds only the distribution of particle rows over ranks), resume, ``mpisim
export`` (:mod:`mpisim.io.viewers`), the analysis reader (:mod:`analysis.io`) and the synthetic test files
(:mod:`analysis.synthetic`, written with :class:`SerialWriter`). It imports h5py and numpy only, never
mpi4py, so the serial analysis package can use it.

The functions that create or resize objects change HDF5 metadata: on a file opened with the ``mpio``
driver, every rank calls them with the same arguments (parallel HDF5 requires it); the functions that
write data are called by the ranks that own the data. On a serial file both are plain calls.

Files written before this module existed read and resume unchanged: their string attributes are
variable-length (read by :func:`text` alike) and their S(k) group sits at :data:`LEGACY_STRUCTURE_FACTOR`
(found by :func:`structure_factor_path`, moved by :func:`upgrade_layout` when such a file is appended to).
"""
import os
from pathlib import Path

import h5py
import numpy as np

#: the H5MD specification version the files follow (https://www.nongnu.org/h5md/h5md.html, 1.1.0)
H5MD_VERSION = (1, 1)

H5MD = "h5md"
PARTICLES = "particles/all"
POSITION = f"{PARTICLES}/position"
IMAGE = f"{PARTICLES}/image"
BOX = f"{PARTICLES}/box"
EDGES = f"{BOX}/edges"
ID = f"{PARTICLES}/id"
RADIUS = f"{PARTICLES}/radius"
SPECIES = f"{PARTICLES}/species"
#: the per-frame datasets of the particles group: positions (frames, N, d), images, box edges (frames, d)
POSITION_VALUE = f"{POSITION}/value"
IMAGE_VALUE = f"{IMAGE}/value"
EDGES_VALUE = f"{EDGES}/value"
POSITION_STEP = f"{POSITION}/step"
POSITION_TIME = f"{POSITION}/time"
OBSERVABLES = "observables"
PARAMETERS = "parameters"
PROVENANCE = f"{PARAMETERS}/provenance"
#: attribute of /parameters: the full resolved configuration as TOML text
CONFIG_TOML = "config_toml"
#: S(k) measurements: a root group of its own, outside /observables, whose series readers such as
#: MDAnalysis index by frame number (a series with fewer rows than frames makes them fail)
STRUCTURE_FACTOR = "structure_factor"
#: where files written before 2026-12 keep S(k)
LEGACY_STRUCTURE_FACTOR = f"{OBSERVABLES}/structure_factor"

#: the group of a checkpoint file (OUT.h5.ckpt, mpisim/io/checkpoint.py) that holds one dataset per particle field
CHECKPOINT_STATE = "state"
#: the particles group of the view file that MDAnalysis reads (mpisim/io/viewers.py)
VIEW_PARTICLES = "particles/trajectory"

#: the datasets that grow by one row per stored frame; position, image and box edges share position's
#: step and time (hard links, as H5MD asks of elements sampled together)
FRAME_DATASETS = (POSITION_STEP, POSITION_TIME, POSITION_VALUE, IMAGE_VALUE, EDGES_VALUE)
#: the datasets of a time series (an H5MD time-dependent element)
SERIES_DATASETS = ("step", "time", "value")
#: rows per chunk of the per-particle frame datasets
CHUNK_ROWS = 1 << 16


def observable_path(name):
    """Path of the time series ``name`` (an H5MD time-dependent element under /observables)."""
    return f"{OBSERVABLES}/{name}"


def checkpoint_dataset(name):
    """Path of the particle-field dataset ``name`` in a checkpoint file."""
    return f"{CHECKPOINT_STATE}/{name}"


# ------------------------------------------------------------------------------------------- strings
def fixed_string(value, encoding="utf-8"):
    """``value`` (str) as a scalar of a fixed-length HDF5 string type: H5MD 1.1 asks for fixed-length
    strings in /h5md (author, creator) and in box/boundary. An empty string is stored with length 1."""
    data = str(value).encode(encoding)
    return np.array(data, dtype=h5py.string_dtype(encoding, max(1, len(data))))


def fixed_strings(values, encoding="ascii"):
    """A 1-d array of fixed-length strings (one common length), e.g. box/boundary."""
    data = [str(v).encode(encoding) for v in values]
    return np.array(data, dtype=h5py.string_dtype(encoding, max([1] + [len(d) for d in data])))


def text(value):
    """A string attribute as str (fixed- or variable-length, bytes or str); arrays become lists."""
    if isinstance(value, np.ndarray) and value.ndim > 0:
        return [text(v) for v in value]
    if isinstance(value, np.ndarray):
        value = value[()]
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode("utf-8")
    return str(value)


# -------------------------------------------------------------------------------------------- layout
def _series(group, name, dtype, rows_per_chunk):
    g = group.create_group(name)
    g.create_dataset("step", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(rows_per_chunk,))
    g.create_dataset("time", shape=(0,), maxshape=(None,), dtype=np.float64, chunks=(rows_per_chunk,))
    g.create_dataset("value", shape=(0,), maxshape=(None,), dtype=dtype, chunks=(rows_per_chunk,))
    return g


def write_h5md_metadata(f, author, creator_version):
    """The /h5md group: H5MD version, author name, creator mpisim and its version (fixed-length strings)."""
    h5md = f.create_group(H5MD)
    h5md.attrs["version"] = np.array(H5MD_VERSION, dtype=np.int32)
    h5md.create_group("author").attrs["name"] = fixed_string(author)
    creator = h5md.create_group("creator")
    creator.attrs["name"] = fixed_string("mpisim")
    creator.attrs["version"] = fixed_string(creator_version)


def write_view_layout(v, source, steps, edges, n, dim):
    """The particles group of the view file that MDAnalysis reads (``mpisim.io.viewers``): in the open file
    ``v``, /particles/trajectory with position/value a virtual dataset (frames, n, 3) mapped onto the
    positions of the output ``source`` (an absolute path; z = 0 in 2d, the fill value), position/step and
    time, and the box as a time-dependent (frames, 3) element ``edges`` (third edge 1 in 2d, as the
    engine treats a 2-d system)."""
    frames = len(steps)
    traj = v.create_group(VIEW_PARTICLES)
    position = traj.create_group("position")
    position["step"] = np.asarray(steps, dtype=np.int64)
    position["time"] = np.asarray(steps, dtype=np.float64)
    layout = h5py.VirtualLayout(shape=(frames, n, 3), dtype=np.float64)
    layout[:, :, :dim] = h5py.VirtualSource(source, POSITION_VALUE, shape=(frames, n, dim))
    position.create_virtual_dataset("value", layout, fillvalue=0.0)
    box = traj.create_group("box")
    box.attrs["dimension"] = np.int32(3)
    box.attrs["boundary"] = fixed_strings(["periodic"] * 3)
    e = box.create_group("edges")
    e["step"], e["time"] = position["step"], position["time"]
    e["value"] = np.asarray(edges, dtype=np.float64)


def create_layout(f, n, dim, *, series, config_toml, sections, provenance, author, creator_version,
                  with_species=False):
    """Create the groups and (empty, extendable) datasets of a new output file in ``f``.

    n, dim: particles and dimension; series: {name: numpy dtype} of the /observables time series;
    config_toml: the configuration text; sections: {section: {key: value}} stored as attributes of
    /parameters/<section> (None values skipped, empty lists as empty float arrays); provenance: attributes of
    /parameters/provenance; author, creator_version: the /h5md metadata. Metadata only (collective on mpio).
    """
    write_h5md_metadata(f, author or "mpisim user", creator_version)

    part = f.create_group(PARTICLES)
    chunk_rows = max(1, min(n, CHUNK_ROWS))
    position = part.create_group("position")
    position.create_dataset("step", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(1024,))
    position.create_dataset("time", shape=(0,), maxshape=(None,), dtype=np.float64, chunks=(1024,))
    position.create_dataset("value", shape=(0, n, dim), maxshape=(None, n, dim), dtype=np.float64,
                            chunks=(1, chunk_rows, dim))
    image = part.create_group("image")
    image["step"], image["time"] = position["step"], position["time"]
    image.create_dataset("value", shape=(0, n, dim), maxshape=(None, n, dim), dtype=np.int32,
                         chunks=(1, chunk_rows, dim))
    # The box is constant, stored as a time-dependent element sampled with the positions (H5MD 1.1 allows a
    # box "fixed in time or not"): MDAnalysis's H5MD reader reads only box/edges/value[frame]
    # (docs/file-format.md, "The box").
    box = part.create_group("box")
    box.attrs["dimension"] = np.int32(dim)
    box.attrs["boundary"] = fixed_strings(["periodic"] * dim)
    edges = box.create_group("edges")
    edges["step"], edges["time"] = position["step"], position["time"]
    edges.create_dataset("value", shape=(0, dim), maxshape=(None, dim), dtype=np.float64, chunks=(1024, dim))
    part.create_dataset("id", shape=(n,), dtype=np.int64)
    part.create_dataset("radius", shape=(n,), dtype=np.float64)
    if with_species:
        part.create_dataset("species", shape=(n,), dtype=np.int32)

    obs = f.create_group(OBSERVABLES)
    for name, dtype in series.items():
        _series(obs, name, dtype, 4096)

    params = f.create_group(PARAMETERS)
    params.attrs[CONFIG_TOML] = config_toml
    for section, table in sections.items():
        g = params.create_group(section)
        for key, value in table.items():
            if value is None:
                continue
            g.attrs[key] = np.zeros(0) if (isinstance(value, (list, tuple)) and not value) else value
    prov = params.create_group("provenance")
    for key, value in provenance.items():
        prov.attrs[key] = value


def upgrade_layout(f):
    """Bring a file written before 2026-12 to the current layout before appending to it: its S(k) group
    moves from /observables to the root (a link move; the data are untouched). Metadata (collective)."""
    if LEGACY_STRUCTURE_FACTOR in f and STRUCTURE_FACTOR not in f:
        f.move(LEGACY_STRUCTURE_FACTOR, STRUCTURE_FACTOR)


def resize_frames(f, frames):
    """Set the number of stored frames (grow to append one, shrink to truncate). Metadata."""
    for name in FRAME_DATASETS:
        f[name].resize(frames, axis=0)


def write_frame_header(f, frame, step, box):
    """step, time and box edges of frame ``frame`` (the rank-0 part of a frame; positions are separate)."""
    f[POSITION_STEP][frame] = step
    f[POSITION_TIME][frame] = float(step)
    f[EDGES_VALUE][frame] = box


def series_rows(group):
    """Number of rows of a time series group (an /observables series or the S(k) group)."""
    return group["step"].shape[0]


def series_steps(group):
    """Steps int64 [rows] of a time series group (an /observables series or the S(k) group)."""
    return group["step"][()].astype(np.int64)


def resize_series(group, rows):
    """Set the number of rows of a time series group (step, time, value). Metadata."""
    for name in SERIES_DATASETS:
        group[name].resize(rows, axis=0)


def write_series_rows(group, first, steps, values):
    """Rows ``first, first + 1, ...`` of a time series: steps (int64), time = step, values."""
    write_series_datasets(series_datasets(group), first, steps, values)


def series_datasets(group):
    """The (step, time, value) datasets of a time series group: handles a writer keeps while its file is
    open (each look-up by name costs tens of microseconds; a flush appends to seven series)."""
    return tuple(group[name] for name in SERIES_DATASETS)


def write_series_datasets(datasets, first, steps, values):
    """``write_series_rows`` on a series' ``series_datasets``."""
    step, time, value = datasets
    steps = np.asarray(steps, dtype=np.int64)
    step[first:first + len(steps)] = steps
    time[first:first + len(steps)] = steps.astype(np.float64)
    value[first:first + len(steps)] = np.asarray(values, dtype=value.dtype)


# --------------------------------------------------------------------------------- structure factor
def structure_factor_path(f):
    """Path of the S(k) group in an open file (current or legacy location), or None."""
    for path in (STRUCTURE_FACTOR, LEGACY_STRUCTURE_FACTOR):
        if path in f:
            return path
    return None


def remove_structure_factor(f):
    """Delete the S(k) measurements of an open file (either location)."""
    for path in (STRUCTURE_FACTOR, LEGACY_STRUCTURE_FACTOR):
        if path in f:
            del f[path]


def append_structure_factor(f, result, attrs, write_values=True):
    """Append one S(k) measurement (``result``: .step, .k, .k_mean, .counts, .S, global) to /structure_factor,
    creating it at first use: k, k_mean [bins] float64, count [bins] int64, step [m] int64, time [m] float64,
    value [m, bins] float64, the measurement's parameters ``attrs`` as attributes (docs/file-format.md).
    A file of the old layout is upgraded first. Collective on a shared (mpio) file; only ranks with
    ``write_values`` write data."""
    upgrade_layout(f)
    bins = len(result.S)
    if STRUCTURE_FACTOR not in f:
        g = f.create_group(STRUCTURE_FACTOR)
        for key, value in attrs.items():
            g.attrs[key] = value
        fixed = (("k", result.k, np.float64), ("k_mean", result.k_mean, np.float64),
                 ("count", result.counts, np.int64))
        for name, _, dtype in fixed:
            g.create_dataset(name, shape=(bins,), dtype=dtype)
        g.create_dataset("step", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(256,))
        g.create_dataset("time", shape=(0,), maxshape=(None,), dtype=np.float64, chunks=(256,))
        g.create_dataset("value", shape=(0, bins), maxshape=(None, bins), dtype=np.float64,
                         chunks=(max(1, 4096 // bins), bins))
        if write_values:
            for name, data, dtype in fixed:
                g[name][:] = np.asarray(data, dtype=dtype)
    g = f[STRUCTURE_FACTOR]
    if g["value"].shape[1] != bins:
        raise ValueError(f"/{STRUCTURE_FACTOR}: holds {g['value'].shape[1]} bins, the new measurement has {bins}")
    rows = g["step"].shape[0]
    resize_series(g, rows + 1)
    if write_values:
        g["step"][rows] = result.step
        g["time"][rows] = float(result.step)
        g["value"][rows] = result.S


def read_structure_factor(f):
    """The S(k) measurements of an open file or a path, or None when it holds none: a dict with step
    int64 [m], k, k_mean float64 [bins] (bin centres, mean |k| of each bin), count int64 [bins] (wave
    vectors per bin), S float64 [m, bins] and attrs (the measurement's parameters)."""
    if not isinstance(f, h5py.Group):
        with h5py.File(f, "r") as fh:
            return read_structure_factor(fh)
    path = structure_factor_path(f)
    if path is None:
        return None
    g = f[path]
    return {"step": g["step"][()].astype(np.int64), "k": g["k"][()], "k_mean": g["k_mean"][()],
            "count": g["count"][()], "S": g["value"][()],
            "attrs": {key: (text(v) if isinstance(v, (bytes, str, np.bytes_)) else v) for key, v in g.attrs.items()}}


# ------------------------------------------------------------------------------------------- readers
def read_parameters(path):
    """The run configuration TOML text stored in an output file (a path or an open file); KeyError if
    it holds none."""
    if isinstance(path, h5py.Group):
        return text(path[PARAMETERS].attrs[CONFIG_TOML])
    with h5py.File(path, "r") as f:
        return read_parameters(f)


def particle_count(f):
    """N of an open output file (its id dataset)."""
    return int(f[ID].shape[0])


def species_count(f):
    """Number of species of an open output file, or None when it stores no species."""
    return int(f[SPECIES][()].max()) + 1 if SPECIES in f else None


def has_positions(f):
    """Whether an open file has a position element (an mpisim output has one, possibly of 0 frames)."""
    return POSITION_VALUE in f


def has_images(f):
    """Whether an open file has an image element."""
    return IMAGE_VALUE in f


def position_shape(f):
    """(frames, N, d) of the stored positions of an open file, or None if it has no position element."""
    return f[POSITION_VALUE].shape if POSITION_VALUE in f else None


def positions_dataset(f):
    """The positions dataset (frames, N, d) of an open file, for reading slices of it (e.g. a rank's rows)."""
    return f[POSITION_VALUE]


def read_positions(f, frame, lo=0, hi=None):
    """Positions (hi - lo, d) of the rows lo..hi - 1 (ids, rows are in id order) of frame ``frame`` of an
    open file."""
    return f[POSITION_VALUE][frame, lo:hi]


def read_images(f, frame):
    """Images (N, d) int32 of frame ``frame`` of an open file (``()``: all frames, (frames, N, d))."""
    return f[IMAGE_VALUE][frame]


def read_radius(f):
    """Radii float64 [N] of an open output file, in id order."""
    return f[RADIUS][()]


def read_species(f):
    """Species int64 [N] of an open output file, or None when it stores none (one species)."""
    return f[SPECIES][()].astype(np.int64) if SPECIES in f else None


def dimension(f):
    """The spatial dimension d of an open output file (box ``dimension`` attribute)."""
    return int(f[BOX].attrs["dimension"])


def read_box(part, frame=-1):
    """Box edges (d,) of frame ``frame``; ``part`` is an open file or its particles group. Reads both H5MD
    forms of a cuboid box: a time-dependent element (this writer) or a fixed dataset (other writers)."""
    if PARTICLES in part:
        part = part[PARTICLES]
    edges = part["box/edges"]
    if isinstance(edges, h5py.Group):
        return edges["value"][frame]
    return edges[()]


def read_box_edges(f):
    """Box edges (frames, d) of every stored frame of an open file; a fixed box (other writers) is
    repeated for every frame."""
    edges = f[EDGES]
    if isinstance(edges, h5py.Group):
        return edges["value"][()]
    return np.tile(edges[()], (frame_count(f), 1))


def stored_box(f):
    """Box edges (d,) of an open output file: of its last frame, or its fixed box; None if the box is
    time-dependent and no frame is stored yet."""
    edges = f[PARTICLES]["box/edges"]
    if isinstance(edges, h5py.Group) and edges["value"].shape[0] == 0:
        return None
    return read_box(f)


def frame_steps(f):
    """Steps of the stored frames, int64 [frames], of an open file."""
    return f[POSITION_STEP][()].astype(np.int64)


def frame_count(f):
    """Number of stored frames of an open file."""
    return f[POSITION_VALUE].shape[0]


def read_frame(path, frame=-1):
    """(step, ids, positions (N, d), images (N, d), radii, box (d,)) of one frame, serially."""
    with h5py.File(path, "r") as f:
        if frame_count(f) == 0:
            raise ValueError(f"{path}: no snapshot stored")
        return (int(f[POSITION_STEP][frame]), f[ID][:], f[POSITION_VALUE][frame], f[IMAGE_VALUE][frame],
                f[RADIUS][:], read_box(f, frame))


def parse_frames(spec, n_frames):
    """Frame indices from ``all`` or a comma list of integers and slices (``0,5,-1``, ``10:20:2``).
    Raises ValueError naming --frames and the allowed range."""
    allowed = f"'all', or comma-separated integers in [-{n_frames}, {n_frames}) and slices like 0:10:2"
    if n_frames == 0:
        raise ValueError("--frames: the file holds no snapshot")
    if spec is None or spec.strip() == "all":
        return list(range(n_frames))
    out = []
    for item in spec.split(","):
        item = item.strip()
        try:
            if ":" in item:
                parts = [int(x) if x.strip() else None for x in item.split(":")]
                if len(parts) > 3 or parts[-1] == 0 and len(parts) == 3:
                    raise ValueError
                out.extend(range(n_frames)[slice(*parts)])
            else:
                i = int(item)
                if not -n_frames <= i < n_frames:
                    raise ValueError
                out.append(i % n_frames)
        except ValueError:
            raise ValueError(f"--frames: bad item {item!r}; allowed: {allowed}") from None
    if not out:
        raise ValueError(f"--frames: {spec!r} selects no frame; allowed: {allowed}")
    return out


def read_series(f, name):
    """(step int64 [n], value [n]) of the time series /observables/<name> of an open file."""
    g = f[observable_path(name)]
    return g["step"][()].astype(np.int64), g["value"][()]


def series_names(f):
    """Names of the /observables time series of an open file (a legacy S(k) group is not a series)."""
    if OBSERVABLES not in f:
        return []
    return sorted(name for name, g in f[OBSERVABLES].items()
                  if isinstance(g, h5py.Group) and "value" in g and observable_path(name) != LEGACY_STRUCTURE_FACTOR)


def read_provenance(f):
    """The /parameters/provenance attributes of an open file, strings decoded ({} if absent)."""
    if PROVENANCE not in f:
        return {}
    return {key: (text(v) if isinstance(v, (bytes, np.bytes_)) else v) for key, v in f[PROVENANCE].attrs.items()}


def start_time(f):
    """The provenance start_time of an open output file (names the run; checkpoints record it)."""
    return str(read_provenance(f).get("start_time", ""))


def missing_series(f, names):
    """The names among ``names`` that have no /observables time series in the open file ``f``."""
    return [name for name in names if observable_path(name) not in f]


def output_finished(path):
    """True if ``path`` is an output file whose run has ended: its provenance ``end_time`` is set (a run
    being written, killed, or stopped for a resume has it empty). False for a missing or unreadable
    file (e.g. locked while being written). Serial."""
    if not os.path.isfile(path):
        return False
    try:
        with h5py.File(path, "r") as f:
            return bool(str(read_provenance(f).get("end_time", "")).strip())
    except OSError:
        return False


def is_output(f):
    """Whether an open HDF5 file looks like an mpisim output (configuration and particles group)."""
    return PARAMETERS in f and CONFIG_TOML in f[PARAMETERS].attrs and PARTICLES in f


# ------------------------------------------------------------------------------------ serial writer
class SerialWriter:
    """Writes an output file from one process, through the same layout functions as the parallel writer
    (used by :mod:`analysis.synthetic` and tests; the simulation uses :class:`mpisim.io.h5md.H5MDWriter`).

    path: the new file (replaced); n, dim: particles and dimension; box: edges (dim,); series: {name:
    dtype} of /observables; config_toml, sections, provenance, author, creator_version: as
    :func:`create_layout`; with_species: create /particles/all/species. Use as a context manager or
    call :meth:`close`.
    """

    def __init__(self, path, n, dim, box, *, series, config_toml, sections, provenance, author="",
                 creator_version=None, with_species=False):
        if creator_version is None:
            from .. import __version__ as creator_version
        self.path, self.n, self.dim = Path(path), int(n), int(dim)
        self.box = np.asarray(box, dtype=np.float64)[:dim]
        self.file = h5py.File(self.path, "w")
        create_layout(self.file, self.n, self.dim, series=series, config_toml=config_toml, sections=sections,
                      provenance=provenance, author=author or os.environ.get("USER", ""),
                      creator_version=creator_version, with_species=with_species)
        self.file[ID][:] = np.arange(self.n, dtype=np.int64)

    def write_static(self, radius, species=None):
        """radius [N] (and species [N]) in id order."""
        self.file[RADIUS][:] = np.broadcast_to(np.asarray(radius, dtype=np.float64), (self.n,))
        if species is not None:
            self.file[SPECIES][:] = np.asarray(species, dtype=np.int32)

    def append_frame(self, step, positions, images):
        """One frame: positions (N, d) wrapped into [0, L), images (N, d), rows in id order."""
        frame = frame_count(self.file)
        resize_frames(self.file, frame + 1)
        self.file[POSITION_VALUE][frame] = np.asarray(positions, dtype=np.float64)[:, :self.dim]
        self.file[IMAGE_VALUE][frame] = np.asarray(images, dtype=np.int32)[:, :self.dim]
        write_frame_header(self.file, frame, step, self.box)

    def append_series(self, steps, values):
        """Rows of the /observables series: steps [m], values {name: [m]} (every series of the file)."""
        for name, data in values.items():
            g = self.file[observable_path(name)]
            first = g["step"].shape[0]
            resize_series(g, first + len(steps))
            write_series_rows(g, first, steps, data)

    def append_structure_factor(self, result, attrs):
        append_structure_factor(self.file, result, attrs)

    def set_provenance(self, **attrs):
        for key, value in attrs.items():
            self.file[PROVENANCE].attrs[key] = value

    def close(self):
        if self.file is not None:
            self.file.close()
            self.file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
