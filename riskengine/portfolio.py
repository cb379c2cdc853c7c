"""Credit portfolios and bank capital: the tables a risk team already has, read and validated.

A portfolio is a table of rows ``(bank, region, segment, ead, pd, lgd)``, optionally ``rho``,
from CSV or parquet: a bank (or a whole banking system) lends ``ead`` (the economy's unit, USD
million at 2023 prices for the library's economy) to borrowers of ``segment`` in ``region``, with
a baseline one-year probability of default ``pd`` and a loss given default ``lgd``. Segments are
the economy's sectors (the borrowers are firms of that sector and region) or one of
:data:`REGIONAL_SEGMENTS` (households, commercial real estate, the sovereign), whose PDs follow the
region's value added lost (docs/model.md, section 7). Other columns (a source, a comment) are
ignored; rows with the same bank, region, segment, pd, lgd and rho are one class of the credit
stage.

Capital is a table ``(bank, cet1, rwa)``: CET1 capital and risk-weighted assets in the same unit,
one row per bank of the portfolio; with it a run reports CET1 depletion in basis points.

``portfolio: proxy`` keeps model v1's exposure proxy as an option: each region's banking system
lends ``ead_multiple`` times the financial services its ``bank_sector`` node sells to every node.

Every problem is a :class:`~riskengine.errors.PortfolioError`, one line naming the file, the row
(counted from 1 after the header) and the column.

This module imports numpy, riskengine's errors and inputs modules, and pyarrow for parquet.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from riskengine.errors import PortfolioError
from riskengine.inputs import InputFile, read_bytes, read_text

__all__ = [
    "COLUMNS",
    "LIBRARY",
    "REGIONAL_SEGMENTS",
    "Capital",
    "Portfolio",
    "builtin_portfolios",
    "proxy_portfolio",
    "read_capital",
    "read_portfolio",
    "segments",
]

COLUMNS = ("bank", "region", "segment", "ead", "pd", "lgd")
# Segments whose PD follows the region's value added lost, not one node's output loss.
REGIONAL_SEGMENTS = ("households", "commercial_real_estate", "sovereign")
LIBRARY = Path(__file__).resolve().parent.parent / "configs" / "portfolios"
if not LIBRARY.is_dir():  # installed: configs/ ships as riskengine.data
    LIBRARY = Path(__file__).resolve().parent / "data" / "portfolios"
# A bank name is a label in tables and coordinates: printable, short, no markup characters.
_MAX_NAME = 64


def segments(sectors: tuple[str, ...]) -> tuple[str, ...]:
    """Every segment a portfolio may name, in the cube's order: the sectors, then the regional
    segments."""
    return (*sectors, *REGIONAL_SEGMENTS)


@dataclass(frozen=True)
class Portfolio:
    """Validated portfolio rows (one array per column) and the file they came from."""

    bank: tuple[str, ...]
    region: tuple[str, ...]
    segment: tuple[str, ...]
    ead: np.ndarray
    pd: np.ndarray
    lgd: np.ndarray
    rho: np.ndarray
    name: str
    file: InputFile | None = None

    def __post_init__(self):
        # A portfolio built in Python is held to the same ranges as a file's rows.
        n = len(self.bank)
        for field in ("region", "segment", "ead", "pd", "lgd", "rho"):
            if len(getattr(self, field)) != n:
                raise PortfolioError(f"{self.name}: {field} has {len(getattr(self, field))} "
                                     f"values for {n} rows; give one a row")  # fmt: skip
        for field, lo, hi, open_lo, open_hi in (
            ("ead", 0.0, 1e15, False, False),
            ("pd", 0.0, 1.0, True, True),
            ("lgd", 0.0, 1.0, False, False),
            ("rho", 0.0, 1.0, False, True),
        ):
            values = np.asarray(getattr(self, field), dtype=np.float64)
            for i, v in enumerate(values, start=1):
                _number(self.name, i, field, repr(float(v)), lo, hi, open_lo, open_hi)
            object.__setattr__(self, field, values)

    def check_labels(self, regions: tuple[str, ...], sectors: tuple[str, ...]) -> None:
        """``PortfolioError`` naming the first row whose region or segment the economy lacks."""
        known = segments(sectors)
        for i, (region, segment) in enumerate(zip(self.region, self.segment, strict=True), 1):
            if region not in regions:
                raise PortfolioError(
                    f"{self.name}: row {i}, column 'region': unknown region {region[:40]!r}; use "
                    f"one of {', '.join(regions)}"
                )
            if segment not in known:
                raise PortfolioError(
                    f"{self.name}: row {i}, column 'segment': unknown segment {segment[:40]!r}; "
                    f"use a sector ({', '.join(sectors)}) or {', '.join(REGIONAL_SEGMENTS)}"
                )

    @property
    def banks(self) -> tuple[str, ...]:
        """The banks in order of first appearance."""
        return tuple(dict.fromkeys(self.bank))

    def select(self, banks) -> Portfolio:
        """The rows of ``banks`` only, in their order in the table."""
        keep = [i for i, b in enumerate(self.bank) if b in set(banks)]
        if not keep:
            raise PortfolioError(f"{self.name}: no row of bank(s) {', '.join(banks)}")
        return self.rows(keep)

    def rows(self, keep: list[int]) -> Portfolio:
        """The rows at the indices ``keep`` (0-based), in that order."""
        return Portfolio(
            tuple(self.bank[i] for i in keep),
            tuple(self.region[i] for i in keep),
            tuple(self.segment[i] for i in keep),
            self.ead[keep],
            self.pd[keep],
            self.lgd[keep],
            self.rho[keep],
            self.name,
            self.file,
        )


@dataclass(frozen=True)
class Capital:
    """CET1 capital and risk-weighted assets per bank, in the economy's unit."""

    cet1: dict[str, float]
    rwa: dict[str, float]
    file: InputFile | None = None


def builtin_portfolios() -> list[str]:
    """Names of the library's portfolios (``configs/portfolios/*.csv`` without capital files)."""
    return sorted(p.stem for p in LIBRARY.glob("*.csv") if not p.stem.endswith("_capital"))


def _resolve(spec: str | Path, base_dir: Path, suffix: str = "") -> Path:
    """A library name (``banking_systems_2024``) or a path relative to ``base_dir``."""
    text = str(spec)
    if "/" not in text and "\\" not in text and not Path(text).suffix:
        return LIBRARY / f"{text}{suffix}.csv"
    path = Path(text).expanduser()
    return path if path.is_absolute() else base_dir / path


def _records(path: Path, what: str) -> tuple[list[str], list[list[str]], InputFile]:
    """Header and rows of a CSV or parquet table, every cell as text."""
    if path.suffix.lower() in (".parquet", ".pq"):
        raw, file = read_bytes(path, PortfolioError, what)
        try:
            import pyarrow.parquet as pq

            table = pq.read_table(io.BytesIO(raw))
        except ImportError:
            raise PortfolioError(
                f"{path}: reading parquet needs pyarrow; pip install pyarrow or give a CSV"
            ) from None
        except Exception as exc:  # pyarrow's errors have no common public base
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise PortfolioError(
                f"{path}: not a readable parquet file ({first}); give {what}"
            ) from None
        header = list(table.column_names)
        columns = [table.column(c).to_pylist() for c in header]
        rows = [["" if v is None else str(v) for v in row] for row in zip(*columns, strict=True)]
        return header, rows, file
    text, file = read_text(path, PortfolioError, what)
    try:
        rows = [r for r in csv.reader(io.StringIO(text, newline="")) if r]
    except csv.Error as exc:
        raise PortfolioError(f"{path}: not a readable CSV table ({exc}); give {what}") from None
    if not rows:
        raise PortfolioError(f"{path}: empty; give {what} with a header row")
    header = [h.strip() for h in rows[0]]
    for i, r in enumerate(rows[1:], start=1):
        if len(r) != len(header):
            raise PortfolioError(
                f"{path}: row {i} has {len(r)} cells, the header {len(header)}; give every "
                "row one cell per column"
            )
    return header, rows[1:], file


def _number(path, i, column, cell, lo, hi, open_lo=False, open_hi=False) -> float:
    try:
        value = float(cell)
    except ValueError:
        value = math.nan
    bad = not math.isfinite(value)
    bad = bad or value < lo or value > hi or (open_lo and value == lo) or (open_hi and value == hi)
    if bad:
        left, right = "(" if open_lo else "[", ")" if open_hi else "]"
        raise PortfolioError(
            f"{path}: row {i}, column {column!r}: {cell[:40]!r} is not a number in "
            f"{left}{lo:g}, {hi:g}{right}; write one there"
        )
    return value


def _name(path, i, column, cell) -> str:
    name = cell.strip()
    if not name or len(name) > _MAX_NAME or not name.isprintable() or any(c in name for c in "[]"):
        raise PortfolioError(
            f"{path}: row {i}, column {column!r}: {cell[:40]!r} is not a name (1 to {_MAX_NAME} "
            "printable characters, no brackets); write one there"
        )
    return name


def read_portfolio(
    spec: str | Path, regions: tuple[str, ...], sectors: tuple[str, ...], base_dir: Path = Path()
) -> Portfolio:
    """Read and validate a portfolio table (CSV or parquet), or a library portfolio by name.

    Parameters
    ----------
    spec
        A library name (see :func:`builtin_portfolios`) or a file path (relative paths from
        ``base_dir``, the scenario's folder).
    regions, sectors
        The economy's labels: every row's region must be one of ``regions`` and its segment one
        of :func:`segments`.

    Raises
    ------
    PortfolioError
        One line naming the file, row and column, and the fix.

    Examples
    --------
    >>> p = read_portfolio("banking_systems_2024", ("USA", "CHN", "EU27_GBR", "JPN", "KOR",
    ...     "TWN", "ROW"), ("AGR", "MIN", "LMFG", "CHEM", "METAL", "MACH", "ELEC", "TREQ",
    ...     "UTCON", "TRDTR", "FIN", "OSERV"))
    >>> p.banks[:2]
    ('USA_banks', 'EU27_GBR_banks')
    """
    path = _resolve(spec, base_dir)
    if path.parent == LIBRARY and not path.is_file():
        known = ", ".join(builtin_portfolios())
        raise PortfolioError(f"portfolio {spec!r}: no such library portfolio; known: {known}")
    what = "a credit portfolio (bank,region,segment,ead,pd,lgd)"
    header, rows, file = _records(path, what)
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise PortfolioError(
            f"{path}: column {missing[0]!r} is missing; a portfolio needs the columns "
            f"{', '.join(COLUMNS)} (rho optional)"
        )
    if len(set(header)) != len(header):
        raise PortfolioError(f"{path}: a column name is given twice; give each once")
    if not rows:
        raise PortfolioError(f"{path}: no rows; give at least one exposure")
    col = {c: header.index(c) for c in header}
    out: dict[str, list] = {c: [] for c in (*COLUMNS, "rho")}
    for i, r in enumerate(rows, start=1):
        out["bank"].append(_name(path, i, "bank", r[col["bank"]]))
        out["region"].append(r[col["region"]].strip())
        out["segment"].append(r[col["segment"]].strip())
        out["ead"].append(_number(path, i, "ead", r[col["ead"]], 0.0, 1e15))
        out["pd"].append(_number(path, i, "pd", r[col["pd"]], 0.0, 1.0, True, True))
        out["lgd"].append(_number(path, i, "lgd", r[col["lgd"]], 0.0, 1.0))
        rho = r[col["rho"]] if "rho" in col else "0"
        out["rho"].append(_number(path, i, "rho", rho, 0.0, 1.0, open_hi=True))
    book = Portfolio(
        tuple(out["bank"]),
        tuple(out["region"]),
        tuple(out["segment"]),
        np.array(out["ead"]),
        np.array(out["pd"]),
        np.array(out["lgd"]),
        np.array(out["rho"]),
        str(path),
        file,
    )
    book.check_labels(regions, sectors)
    return book


def read_capital(spec: str | Path, banks: tuple[str, ...], base_dir: Path = Path()) -> Capital:
    """Read a capital table ``(bank, cet1, rwa)``: one row for every bank of the portfolio
    (rows of other banks are ignored), CET1 >= 0 and RWA > 0 in the economy's unit."""
    path = _resolve(spec, base_dir, "_capital")
    if path.parent == LIBRARY and not path.is_file():
        raise PortfolioError(f"capital {spec!r}: no such library capital table ({path.name})")
    header, rows, file = _records(path, "a capital table (bank,cet1,rwa)")
    for c in ("bank", "cet1", "rwa"):
        if c not in header:
            raise PortfolioError(
                f"{path}: column {c!r} is missing; a capital table needs bank, cet1, rwa"
            )
    col = {c: header.index(c) for c in header}
    cet1: dict[str, float] = {}
    rwa: dict[str, float] = {}
    for i, r in enumerate(rows, start=1):
        bank = _name(path, i, "bank", r[col["bank"]])
        if bank in cet1:
            raise PortfolioError(f"{path}: row {i}: bank {bank!r} is given twice; give it once")
        cet1[bank] = _number(path, i, "cet1", r[col["cet1"]], 0.0, 1e15)
        rwa[bank] = _number(path, i, "rwa", r[col["rwa"]], 0.0, 1e15, open_lo=True)
    missing = [b for b in banks if b not in cet1]
    if missing:
        raise PortfolioError(
            f"{path}: no row for bank {missing[0]!r} of the portfolio; add its cet1 and rwa"
        )
    return Capital({b: cet1[b] for b in banks}, {b: rwa[b] for b in banks}, file)


def proxy_portfolio(
    Z: np.ndarray,
    regions: tuple[str, ...],
    sectors: tuple[str, ...],
    bank_sector: str,
    ead_multiple: float,
    pd0: np.ndarray,
    lgd: float,
) -> Portfolio:
    """Model v1's exposure proxy as a portfolio: region r's banking system (``<r>_banks``) lends
    ``ead_multiple * Z[(bank_sector, r), n]`` to every node n, with n's baseline PD ``pd0[n]``."""
    S = len(sectors)
    rows = []
    for r, lender in enumerate(regions):
        flows = Z[r * S + sectors.index(bank_sector)]
        for n in np.flatnonzero(flows > 0):
            rows.append((f"{lender}_banks", regions[n // S], sectors[n % S], flows[n], pd0[n]))
    if not rows:
        raise PortfolioError(f"portfolio proxy: sector {bank_sector} sells nothing to any node")
    bank, region, segment, flow, pd = zip(*rows, strict=True)
    ead = ead_multiple * np.array(flow)
    return Portfolio(
        bank, region, segment, ead, np.array(pd), np.full(len(ead), lgd), np.zeros(len(ead)),
        "proxy",
    )  # fmt: skip
