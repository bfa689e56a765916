"""Compressed VCF text: telling gzip from BGZF, and reading a gzipped file's text without htslib.

htslib (pysam) reads BGZF (bgzip) only, seeking in it; a VCF compressed with plain gzip (`gzip calls.vcf`)
is decompressed on a thread into a pipe that htslib reads in order (`GzipStream`; nothing copied to disk),
or, for a reader of the header alone, its header lines into a file (`gunzip`). A cut-off or damaged stream,
plain gzip or BGZF, is one InputError naming the file (`GzipStream.finish`, `bgzf_damage`). `text_chunks`
gives any text VCF's bytes (plain, gzipped or bgzipped) a piece of whole lines at a time, for the
sites-only reader (`vcf_sites`).

Kept apart from `vcf.py` (which VCF columns become samples, and pysam's records) because it is about bytes
and streams, not VCF records.
"""

from __future__ import annotations

import gzip
import os
import shutil
import zlib
from collections.abc import Iterator
from pathlib import Path

from nanog1.genomics.fasta_index import is_bgzf_head
from nanog1.genomics.variants import InputError
from nanog1.progress import read_to


def is_gzip(path: Path) -> bool:
    """True for a gzip file, plain or BGZF (its first two bytes are gzip's magic number)."""
    with open(path, "rb") as raw:
        return raw.read(2) == b"\x1f\x8b"


def is_plain_gzip(path: Path) -> bool:
    """True for a gzip file that is not BGZF (`gzip calls.vcf`): htslib cannot seek in it, so pysam refuses
    to open it; BGZF (bgzip) and uncompressed files are read as they are."""
    with open(path, "rb") as raw:
        head = raw.read(18)
    return head[:2] == b"\x1f\x8b" and not is_bgzf_head(head)


def gunzip(path: Path, copy: Path, header_only: bool) -> None:
    """Decompress plain-gzip `path` into `copy` (only its '#' header lines when `header_only`: a whole file
    is streamed instead, `GzipStream`); a cut-off download or a damaged stream is an InputError naming
    `path`."""
    try:
        with gzip.open(path, "rb") as src, open(copy, "wb") as out:
            if not header_only:
                shutil.copyfileobj(src, out, 1 << 20)
                return
            for line in src:
                if not line.startswith(b"#"):
                    break
                out.write(line)
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise InputError(str(path), None, f"truncated or damaged gzip file ({err})") from err


class GzipStream:
    """A plain-gzip VCF's text, decompressed by a thread into a pipe that htslib reads in order: htslib
    cannot read plain gzip itself (it seeks), and decompressing the whole file into a temporary copy first
    filled /tmp with a multi-GB VCF. Nothing is written to disk; a damaged or cut-off stream is told by
    `finish` as an InputError naming `path`, whatever the reader made of the text it got."""

    #: Seconds the feed waits on a full pipe before it looks again whether the reader has stopped.
    POLL = 0.2

    def __init__(self, path: Path) -> None:
        import threading

        self.path = path
        self.error: Exception | None = None
        #: set when the reader stopped on an error: the feed then reads the rest of the file, to tell
        #: whether the stream is damaged further on (a damaged stream is the error to report)
        self.check_rest = False
        #: set by `finish`/`abandon`: nothing more is written. pysam reads a duplicate of the pipe's reading
        #: end, so closing `reader` alone does not end a feed blocked on a full pipe while that is open
        self.stopped = threading.Event()
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        _widen_pipe(write_fd)
        self.reader = os.fdopen(read_fd, "rb")
        self._thread = threading.Thread(target=self._feed, args=(write_fd,), daemon=True)
        self._thread.start()

    def _feed(self, write_fd: int) -> None:
        """Decompress into the pipe. A reader that stops early closes its end (or `stopped` is set), and the
        feed ends quietly, or, with `check_rest`, after reading the rest of the file for the damage that may
        have made the reader stop."""
        try:
            with gzip.open(self.path, "rb") as src:
                try:
                    while piece := src.read(1 << 20):
                        self._write(write_fd, piece)
                except BrokenPipeError:
                    while self.check_rest and src.read(1 << 20):
                        pass
        except (OSError, EOFError, zlib.error) as err:  # gzip.BadGzipFile is an OSError
            self.error = err
        finally:
            os.close(write_fd)

    def _write(self, fd: int, data: bytes) -> None:
        """Write `data` whole to the pipe (its writing end is non-blocking), waiting on a full pipe at most
        `POLL` seconds at a time; BrokenPipeError once the reader has closed its end or stopped."""
        import select

        view = memoryview(data)
        while view:
            if self.stopped.is_set():
                raise BrokenPipeError("the reader stopped")
            try:
                view = view[os.write(fd, view):]
            except BlockingIOError:
                select.select([], [fd], [], self.POLL)

    def finish(self, check_rest: bool = False) -> None:
        """Close the reading end, wait for the feed, and raise what it met (truncated or damaged gzip);
        `check_rest`: the reader stopped on an error, so the rest of the file is read for damage first."""
        self.check_rest = check_rest
        self.abandon()
        self._thread.join()
        if self.error is not None:
            raise InputError(str(self.path), None, f"truncated or damaged gzip file ({self.error})")

    def abandon(self) -> None:
        """Stop the feed and close the reading end, without waiting (an interrupt on its way out)."""
        self.stopped.set()
        self.reader.close()


def _widen_pipe(fd: int) -> None:
    """Give the pipe a 1 MiB buffer where Linux allows (64 KiB by default): the feed then writes a piece in
    one call, not sixteen with a wait between each, as fast as the blocking write it replaced."""
    import fcntl

    try:
        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
    except OSError:  # above /proc/sys/fs/pipe-max-size, or not Linux: the default buffer works, slower
        pass


def bgzf_damage(path: Path) -> str | None:
    """What is wrong with a BGZF file's compressed stream (a bgzipped VCF, a BCF), or None when it reads
    whole (and for other files). htslib says "truncated file" for a damaged block, as for a record cut
    short, and raises it again at every read without moving on: `vcf._collect` asks here at its first
    error, so that a damaged file is one error naming it, not a malformed line at the damage (nor, under
    `--on-error skip`, a count that never ends)."""
    if not is_gzip(path) or is_plain_gzip(path):
        return None  # a plain-gzip stream's damage is `GzipStream.finish`'s to tell
    try:
        with gzip.open(path, "rb") as f:
            while f.read(1 << 24):
                pass
    except (OSError, EOFError, zlib.error) as err:  # gzip.BadGzipFile is an OSError
        return str(err)
    return None


def text_chunks(path: Path, size: int) -> Iterator[bytes]:
    """A text VCF's bytes in pieces of about `size` bytes, each ending at a line end but the last (what
    follows the file's last newline), a gzipped one's (plain gzip or BGZF, which is gzip of many members)
    decompressed as they are read (nothing held whole, nothing on disk); a cut-off or damaged gzip stream
    is an InputError naming `path`. `gzip.open` checks each BGZF block's CRC, as htslib does; a bigger read
    buffer or zlib per block saved 0.03-0.08 s of 0.42-0.49 s on 200 MB, not worth a second BGZF reader."""
    try:
        with open(path, "rb") as raw, (gzip.GzipFile(fileobj=raw) if is_gzip(path) else raw) as f:
            rest: list[bytes] = []
            while block := f.read(size):
                read_to(raw.tell())  # progress within the file (nanog1.progress.reading)
                cut = block.rfind(b"\n") + 1
                if not cut:  # a line longer than `size`: wait for its end
                    rest.append(block)
                    continue
                yield b"".join([*rest, block[:cut]]) if rest else block[:cut]
                rest = [block[cut:]] if cut < len(block) else []
            if rest:
                yield b"".join(rest)
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise InputError(str(path), None, f"truncated or damaged gzip file ({err})") from err
