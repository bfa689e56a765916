"""Atomic, durable, shareable writes, and weights-only loads: the one way NanoG1 puts files on disk.

Every output goes through `atomic_path` (or its text/bytes shorthands): the writer fills a temporary file
beside the target; the file is fsynced, given the mode a plain `open()` would give a new file (0o666 less
the umask, so group-readable under the usual 022 or 002 umask, not the 0600 of `mkstemp`), renamed onto the
target, and the folder is fsynced so that the rename survives a crash. A reader sees the old file or the
new one, never half of one, and a failed writer leaves the old file and no temporary behind.

Checkpoints are read back with `load_weights` (`torch.load(weights_only=True)`): tensors, numbers, strings,
lists and dicts only, so loading a file never runs code from it.
"""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from nanog1.errors import UserError

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask (read from /proc where it can be; else set and restored under a lock)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    with _UMASK_LOCK:
        umask = os.umask(0o077)
        os.umask(umask)
    return umask


def new_file_mode() -> int:
    """The mode `open(path, "w")` gives a new file: 0o666 less the umask."""
    return 0o666 & ~current_umask()


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (a rename in it) to disk; a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(tmp: Path, path: Path, mode: int | None = None) -> None:
    """Make the finished temporary file `tmp` the file `path`: fsync, chmod (`mode` or a new file's), rename,
    fsync the folder. For writers that name their own temporary files (e.g. `pysam.faidx`)."""
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.fchmod(fd, new_file_mode() if mode is None else mode)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(Path(path).parent)


@contextmanager
def atomic_path(path: str | Path, mode: int | None = None, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path (`.<name>.<random><suffix>`) beside `path` for a writer that takes a path
    (h5ad, torch.save; give savefig a suffix it knows); once the block ends without error, publish it as
    `path` (see the module docstring)."""
    path = Path(path)
    if path.is_dir():  # os.replace would fail naming the temporary file, not the user's path
        raise UserError(f"{path}: is a folder; give the path of the file to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        publish(tmp, path, mode)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_open(path: str | Path, mode: str = "w", file_mode: int | None = None,
                **kwargs: Any) -> Iterator[IO]:
    """`open(path, mode)` for writing, published atomically when the block ends without error."""
    with atomic_path(path, file_mode) as tmp, open(tmp, mode, **kwargs) as handle:
        yield handle


def atomic_write_text(path: str | Path, text: str, mode: int | None = None) -> Path:
    """Write `text` to `path` atomically; returns the path."""
    with atomic_open(path, "w", mode) as handle:
        handle.write(text)
    return Path(path)


def atomic_write_bytes(path: str | Path, data: bytes, mode: int | None = None) -> Path:
    """Write `data` to `path` atomically; returns the path."""
    with atomic_open(path, "wb", mode) as handle:
        handle.write(data)
    return Path(path)


def atomic_write_with(path: str | Path, writer: Callable[[Path], Any], mode: int | None = None,
                      suffix: str = ".tmp") -> Path:
    """Call `writer(temporary path)`, then publish the result as `path`; returns the path."""
    with atomic_path(path, mode, suffix) as tmp:
        writer(tmp)
    return Path(path)


#: Characters of a shell glob: an input path holding one that does not exist is most likely a pattern the
#: shell matched to no file and passed on as it was (`calls/*.vcf` beside .vcf.gz files).
GLOB_CHARACTERS = "*?["


def missing_input(path: Path | str) -> str:
    """What to say of an input path that does not exist: 'input file not found', and, where its name is a
    shell glob, that it matched no file and what its folder holds (a few names), so the pattern can be
    mended rather than a file looked for."""
    path = Path(path)
    if not any(c in path.name for c in GLOB_CHARACTERS):
        return "input file not found"
    text = "input file not found: a glob that matched no file (the shell passes it on as it is)"
    folder = path.parent
    if not folder.is_dir():
        return text
    files = sorted(p.name for p in folder.iterdir() if p.is_file())
    shown = f", e.g. {', '.join(files[:3])}" if files else ""
    return f"{text}; {folder.name or folder} holds {len(files):,} file(s){shown}"


def check_writable(path: str | Path, folder: bool = False) -> None:
    """Before a long job, make sure its output can be written: a UserError naming `path` when the folder it
    goes in (`path` itself when `folder`), or the nearest existing folder above one still to be made, refuses
    a new file (read-only, not the user's, a file in the way, a system folder such as /proc). Otherwise that
    is found only at the end, after all the work, and told as a failure on a temporary file. The error says
    why as the system does (`_refusal`), and names the folder it would have to create where there is one:
    '/proc: No such file or directory' read as a missing /proc. Nothing is left behind."""
    path = Path(path)
    probe, missing = path if folder else path.parent, None
    while not probe.exists() and probe != probe.parent:
        probe, missing = probe.parent, probe
    if not probe.is_dir():
        raise UserError(f"{path}: cannot be written there ({probe} is a file, not a folder)")
    try:
        fd, name = tempfile.mkstemp(prefix=".nanog1-write-check.", dir=probe)
    except OSError as err:
        why = _refusal(err, probe)
        if missing is None:
            raise UserError(f"{path}: cannot be written there: {why}") from None
        head = "" if missing == path else f"{path}: "
        raise UserError(f"{head}cannot create folder {missing}: {why}") from None
    os.close(fd)
    os.unlink(name)


def _refusal(err: OSError, folder: Path) -> str:
    """Why the system refused a new file in the existing `folder`, in words naming it: permission, a
    read-only file system, or a folder that takes none (/proc answers 'No such file or directory', which
    read as if the folder itself were missing)."""
    if err.errno in (errno.EACCES, errno.EPERM):
        return f"permission denied in folder {folder}"
    if err.errno == errno.EROFS:
        return f"folder {folder} is on a read-only file system"
    if err.errno == errno.ENOENT:
        return (f"folder {folder} exists but takes no new files or folders (the system answered 'No such "
                "file or directory')")
    return f"folder {folder}: {err.strerror or err}"


def first_non_utf8(lines: Iterable[bytes]) -> tuple[int, bytes, int] | None:
    """(line number from 1, the line, offset of its first bad byte) of the first line that is not UTF-8 text
    (a Latin-1 or Windows-1252 export), None when every line decodes: the readers' errors name the line."""
    for number, raw in enumerate(lines, start=1):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as err:
            return number, raw, err.start
    return None


def check_not_an_input(out: str | Path, inputs: list[str | Path | None]) -> None:
    """Refuse an output path that is one of the command's inputs (the same file by any name: a symlink, a
    hard link, ./x): `nanog1 ingest calls.vcf -o calls.vcf` would otherwise replace the user's calls (or
    sample sheet, or reference FASTA) with the cohort, atomically and without a word."""
    out = Path(out)
    if not out.exists():
        return
    for item in inputs:
        if item is not None and Path(item).exists() and os.path.samefile(out, item):
            raise UserError(f"{out}: the output is also an input ({item}) and would be overwritten: "
                            "give another output path")


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks (provenance records: inputs, sheets, tables, weights)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_weights(path: str | Path, map_location: Any = "cpu") -> Any:
    """`torch.load(path, weights_only=True)`: plain data only, so a file cannot run code when loaded.

    A missing file, or one torch cannot read this way (damaged, not a checkpoint, or a pickled object),
    is a UserError naming it."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such model or checkpoint file")
    if not zipfile.is_zipfile(path):
        raise UserError(f"{path}: not a torch checkpoint (damaged, cut short, or another kind of file)")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises RuntimeError, UnpicklingError, EOFError... for a bad file
        if "Weights only load failed" in str(err):
            raise UserError(f"{path}: holds pickled Python objects, not just weights; NanoG1 loads only"
                            " weights-only checkpoints, so that loading never runs code") from err
        why = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise UserError(f"{path}: not a readable torch checkpoint ({why})") from err


def read_yaml_mapping(path: str | Path, what: str = "a YAML mapping of keys to values") -> dict[str, Any]:
    """A YAML file that must hold a mapping; a syntax error or another shape is a UserError naming the
    file and line (so a config mistake is one line, not a parser traceback)."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise UserError(f"{where}: not valid YAML ({getattr(err, 'problem', err)})") from err
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: not a text file (a YAML file was expected)") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{path}:1: expected {what}")
    return data
