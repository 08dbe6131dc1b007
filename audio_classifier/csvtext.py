"""CSV files as spreadsheets save them: UTF-8 (with or without a byte-order mark), or UTF-16/32
with one. Anything else is refused with the line it fails on and the command that converts
it, never guessed."""

from __future__ import annotations

import codecs
import io
import shlex
from pathlib import Path

from .errors import UsageError

BOMS = (
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)
"""Byte-order marks a CSV may start with, and the encoding each says; without one, UTF-8."""


def read_text(path: Path, what: str = "file") -> str:
    """The text of the CSV *path* (see the module); raises ``UsageError`` naming *what* it is."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror}") from None
    encoding = encoding_of(data)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UsageError(not_encoded(what, path, encoding, f"line {line}, byte {exc.start}")) from None


def encoding_of(start: bytes) -> str:
    """The encoding a file starting with *start* is read in: its byte-order mark's, else UTF-8."""
    return next((name for bom, name in BOMS if start.startswith(bom)), "utf-8")


def not_encoded(what: str, path: Path, encoding: str, where: str) -> str:
    """The message for a CSV that is not in *encoding* at *where*, with the command that
    converts it as typed where the user is, into a file beside it (so that paths in it
    still resolve from where they did)."""
    converted = path.with_name(f"{path.stem}.utf8{path.suffix}")
    return (
        f"{what} {path} is not {encoding.upper().replace('-SIG', '')} ({where}): save it as UTF-8 (a "
        f"spreadsheet's 'CSV UTF-8'), or convert it, e.g. "
        f"'iconv -f GBK -t UTF-8 {shlex.quote(str(path))} > {shlex.quote(str(converted))}'"
    )


def first_undecodable_line(path: Path, encoding: str) -> int | None:
    """The first line of *path* (1-based) holding bytes that are not *encoding*: a text
    stream decodes ahead in blocks, so its error cannot say which line it was."""
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        with open(path, "rb") as handle:
            for number, line in enumerate(handle, 1):
                try:
                    decoder.decode(line)
                except UnicodeDecodeError:
                    return number
    except OSError:
        return None
    return None


def open_text(path: Path, what: str = "file") -> io.TextIOWrapper:
    """The CSV *path* as a text stream in the encoding its byte-order mark says (UTF-8
    without one): for files too large to read whole. A byte that is not of that encoding
    raises ``UnicodeDecodeError`` while reading; ``UsageError`` when it cannot be opened."""
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror}") from None
    encoding = encoding_of(handle.read(4))
    handle.seek(0)
    return io.TextIOWrapper(handle, encoding=encoding, newline="")
