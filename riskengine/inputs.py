"""Reading the files a user gives: text, YAML and labelled CSV tables, each with its digest.

Every file that enters a model is read here, once, as bytes: the bytes are hashed (the run's
identity is the digest of every input file, so that ``--resume`` cannot mix two models) and
decoded from exactly those bytes, so that what is hashed is what is parsed. Anything that is not
what it should be (not UTF-8, binary, far too large, duplicate YAML keys, a CSV cell that is no
finite number) raises the caller's error class with one line naming the file (and row and column)
and the fix.

This module imports numpy, yaml and the standard library.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

__all__ = [
    "MAX_FILE_BYTES",
    "InputFile",
    "Table",
    "parse_yaml",
    "read_bytes",
    "read_table",
    "read_text",
]

# Scenario files and tables are kB to a few MB; far larger means the wrong file.
MAX_FILE_BYTES = 64 * 2**20


@dataclass(frozen=True)
class InputFile:
    """A file that entered a model: its path and the sha256 of the bytes that were read."""

    path: str
    sha256: str


def _read_bytes(path: Path, error: type[Exception], what: str) -> bytes:
    try:
        if not path.is_file():
            raise error(f"{path}: file not found; give the path of {what}")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise error(
                f"{path}: {size / 2**20:.0f} MiB is far too large for {what}; give the right file"
            )
        return path.read_bytes()
    except OSError as exc:
        raise error(f"{path}: cannot read it ({exc.strerror}); check the path and rights") from None


def read_bytes(path: Path, error: type[Exception], what: str) -> tuple[bytes, InputFile]:
    """The bytes of ``path`` (a binary table: parquet) and their digest, or ``error`` in one
    line."""
    raw = _read_bytes(path, error, what)
    return raw, InputFile(str(path.resolve()), hashlib.sha256(raw).hexdigest())


def read_text(path: Path, error: type[Exception], what: str) -> tuple[str, InputFile]:
    """The UTF-8 text of ``path`` and its digest, or ``error`` saying what is wrong in one line."""
    raw = _read_bytes(path, error, what)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text (byte {exc.start}); save {what} as UTF-8") from None
    if "\x00" in text:
        raise error(f"{path}: holds NUL characters, so it is not {what}; give the right file")
    return text, InputFile(str(path.resolve()), hashlib.sha256(raw).hexdigest())


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml's safe loader, refusing a mapping that gives a key twice (yaml keeps the last one
    silently, so ``p_on`` written twice used to run with the second value)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: the base class reports it
                break
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str, path: Path, error: type[Exception]):
    """``text`` parsed as YAML (safe tags only, no key twice), or ``error`` in one line."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}:" if mark else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise error(f"{path}:{where} {problem}; fix it there") from None
    except RecursionError:
        raise error(f"{path}: nested too deeply to be a scenario; fix the file") from None


@dataclass(frozen=True)
class Table:
    """A CSV whose first column labels the rows: labels, header (after the first cell), values."""

    rows: list[str]
    columns: list[str]
    values: np.ndarray  # float64 (rows, columns), every value finite
    file: InputFile


def read_table(path: Path, error: type[Exception], what: str) -> Table:
    """Read a labelled CSV table of finite numbers (a header row, then one labelled row each).

    Raises ``error`` with one line naming the file, the row and the column of the first problem.
    """
    text, file = read_text(path, error, what)
    try:
        rows = [r for r in csv.reader(io.StringIO(text, newline="")) if r]
    except csv.Error as exc:  # e.g. a field over csv's size limit (131,072 characters)
        raise error(f"{path}: not a readable CSV table ({exc}); give {what}") from None
    if len(rows) < 2:
        raise error(f"{path}: expected a header row and at least one data row")
    header, body = rows[0], rows[1:]
    for r in body:
        if len(r) != len(header):
            raise error(
                f"{path}: row {r[0]!r} has {len(r) - 1} values after its label, the header "
                f"{len(header) - 1}; give every row one value per column"
            )
    try:
        values = np.array([r[1:] for r in body], dtype=np.float64).reshape(len(body), -1)
        bad = not np.isfinite(values).all()
    except ValueError:
        bad = True
    if bad:  # find the first cell to name
        for r in body:
            for column, cell in zip(header[1:], r[1:], strict=True):
                try:
                    ok = np.isfinite(float(cell))
                except ValueError:
                    ok = False
                if not ok:
                    raise error(
                        f"{path}: row {r[0]!r}, column {column!r}: {cell[:40]!r} is not a finite "
                        "number; write a number there"
                    )
    return Table([r[0] for r in body], header[1:], values, file)
