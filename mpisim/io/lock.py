"""One writer per output: ``OUT.h5.lock``, held by rank 0 for the life of a job (docs/file-format.md,
"One writer per output"), and the translation of HDF5's own lock errors into "in use by another process".

The lock is an advisory ``fcntl.flock`` on ``OUT.h5.lock``, which holds the pid and host of its holder.
The kernel releases it when the process ends however it ends (SIGKILL included), so a stale lock file left
by a killed job never blocks a resume: only a live holder does. No MPI here: the caller takes it on rank 0
and broadcasts the verdict.
"""
import fcntl
import os
import socket


def lock_path(output):
    return f"{output}.lock"


class OutputInUse(OSError):
    """Another live process writes this output."""


def holder(output):
    """'pid N on HOST' of the job that holds (or last held) OUT.h5.lock, or None."""
    try:
        text = open(lock_path(output)).read().split()
    except OSError:
        return None
    return f"pid {text[0]} on {text[1]}" if len(text) >= 2 else None


class OutputLock:
    """An exclusive lock on ``OUT.h5.lock`` (rank 0). ``acquire()`` raises OutputInUse naming the holder's
    pid if another process holds it; ``release()`` (or process exit) frees it."""

    def __init__(self, output):
        self.output = str(output)
        self.path = lock_path(output)
        self.fd = None

    def acquire(self):
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise OutputInUse(f"{self.output} is in use by another process "
                                  f"({holder(self.output) or 'pid unknown'}); wait for it to end or choose "
                                  f"another output") from None
            # The holder unlinks the file when it releases: if we locked an unlinked inode, start again.
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        self.fd = fd
        return self

    def release(self):
        if self.fd is not None:
            try:
                os.unlink(self.path)
            except OSError:
                pass
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def locked_by_another(output):
    """Whether another live process holds OUT.h5.lock (a probe: nothing is created or kept)."""
    if os.path.realpath(str(output)) in _held:
        return False
    try:
        fd = os.open(lock_path(output), os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def describe_open_error(path, exc):
    """A one-line reason why h5py could not open ``path``: "in use by another process (pid ...)" for
    HDF5's file-lock error or while a job holds OUT.h5.lock (a parallel writer does not take HDF5's lock,
    and a reader can catch its file mid-extension, "truncated"), else "not an HDF5 file or damaged"."""
    text = str(exc)
    if isinstance(exc, BlockingIOError) or "unable to lock file" in text or locked_by_another(path):
        return f"{path} is in use by another process ({holder(path) or 'pid unknown'}); try again when it ends"
    if isinstance(exc, PermissionError):
        return f"{path}: permission denied"
    return f"{path} is not an HDF5 file or is damaged ({text})"


_held = {}   # realpath of an output -> the OutputLock this process holds on it


def hold(output):
    """Take OUT.h5.lock for this process (rank 0), or keep it if this process holds it already (a
    notebook's second Simulation of the same file). Raises OutputInUse if another process holds it."""
    key = os.path.realpath(str(output))
    if key not in _held:
        _held[key] = OutputLock(output).acquire()
    return _held[key]


def release(output):
    """Give up this process's lock on ``output`` (no-op if it holds none)."""
    lock = _held.pop(os.path.realpath(str(output)), None)
    if lock is not None:
        lock.release()
