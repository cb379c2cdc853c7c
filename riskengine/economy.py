"""Multi-region input-output tables and the matrices the model derives from them.

An :class:`Economy` holds intermediate flows ``Z`` (supplier node x buyer node), final demand ``Y``
(node x destination region) and gross output ``x``, on nodes ``(sector, region)`` ordered
region-major (all sectors of the first region, then the next region), the order of the WIOD
tables. Everything the propagation needs (``A``, ``A*``, ``M``) is derived here and nowhere else.

File format (the project's own; ``configs/economy/wiod2011_7x12`` is an example): a folder with
``intermediate.csv`` (first column ``node``, then one column per buying node; nodes are written
``REGION.SECTOR``), ``output.csv`` (columns ``node, output``) and optionally ``final_demand.csv``
(first column ``node``, then one column per region) and ``unit.txt`` (the currency unit, one
line; ``USD million`` when absent).

This module imports numpy and riskengine's errors and inputs modules (pymrio's objects are only
read).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from riskengine.errors import EconomyError
from riskengine.inputs import InputFile, read_table, read_text

__all__ = ["DEFAULT_ECONOMY", "Economy", "EconomyError", "load_economy", "ras"]

DEFAULT_ECONOMY = "wiod2023_7x12"


@dataclass(frozen=True)
class Economy:
    """A multi-region input-output table on nodes (sector, region).

    Parameters
    ----------
    regions, sectors
        Labels, in the order of the nodes: node ``i`` is
        ``(sectors[i % S], regions[i // S])``.
    Z : ndarray, shape (N, N)
        Intermediate flows from supplying node (row) to buying node (column).
    x : ndarray, shape (N,)
        Gross output of each node, strictly positive.
    Y : ndarray, shape (N, R) or None
        Final demand of each node's output by destination region.
    unit : str
        Currency unit of the flows, e.g. ``"USD million"``.
    name : str
        Where the table came from.
    files : tuple of InputFile
        The files it was read from and their sha256 (part of a run's identity).
    year : int or None
        The year whose prices the flows are in (``year.txt`` of a folder).
    """

    regions: tuple[str, ...]
    sectors: tuple[str, ...]
    Z: np.ndarray
    x: np.ndarray
    Y: np.ndarray | None = None
    unit: str = "USD million"
    name: str = ""
    files: tuple[InputFile, ...] = ()  # the files it was read from, with their digests
    year: int | None = None

    def __post_init__(self) -> None:
        n = len(self.regions) * len(self.sectors)
        if len(set(self.regions)) != len(self.regions) or len(set(self.sectors)) != len(
            self.sectors
        ):
            raise EconomyError(f"economy {self.name!r}: region and sector labels must be unique")
        if self.Z.shape != (n, n):
            raise EconomyError(
                f"economy {self.name!r}: intermediate flows have shape {self.Z.shape}, expected "
                f"({n}, {n}) for {len(self.sectors)} sectors x {len(self.regions)} regions"
            )
        if self.x.shape != (n,):
            raise EconomyError(
                f"economy {self.name!r}: output has shape {self.x.shape}, expected ({n},)"
            )
        if not np.all(np.isfinite(self.Z)) or np.any(self.Z < 0):
            raise EconomyError(f"economy {self.name!r}: intermediate flows must be finite and >= 0")
        bad = np.flatnonzero(~(self.x > 0))
        if bad.size:
            raise EconomyError(
                f"economy {self.name!r}: gross output of {self.node_labels[bad[0]]} is "
                f"{self.x[bad[0]]}; every node needs output > 0 (drop or aggregate empty nodes)"
            )
        if self.Y is not None and not np.all(np.isfinite(self.Y)):
            raise EconomyError(f"economy {self.name!r}: final demand must be finite")
        if self.Y is not None and self.Y.shape[0] != n:
            raise EconomyError(
                f"economy {self.name!r}: final demand has {self.Y.shape[0]} rows, expected {n}"
            )
        bad = np.flatnonzero(~(self.value_added > 0))
        if bad.size:
            raise EconomyError(
                f"economy {self.name!r}: the value added of {self.node_labels[bad[0]]} (output "
                "less its inputs) is not positive; its inputs must sum to less than its output"
            )

    @property
    def n_nodes(self) -> int:
        return len(self.regions) * len(self.sectors)

    @property
    def node_labels(self) -> list[str]:
        """``REGION.SECTOR`` for each node, in node order."""
        return [f"{r}.{s}" for r in self.regions for s in self.sectors]

    def node(self, sector: str, region: str) -> int:
        """Index of node (sector, region)."""
        return self.regions.index(region) * len(self.sectors) + self.sectors.index(sector)

    @property
    def value_added(self) -> np.ndarray:
        """Each node's value added (with net taxes and margins): ``x`` minus its inputs, the
        table's value-added row (WIOD's ``va_residual``)."""
        return self.x - self.Z.sum(axis=0)

    @property
    def gdp(self) -> np.ndarray:
        """Each region's GDP: the sum of its nodes' value added, (R,), a year's worth."""
        return self.value_added.reshape(len(self.regions), len(self.sectors)).sum(axis=1)

    @property
    def currency(self) -> str:
        """The unit with the price year, e.g. ``"USD million (2024 prices)"``."""
        return self.unit if self.year is None else f"{self.unit} ({self.year} prices)"

    @property
    def A(self) -> np.ndarray:
        """Input coefficients ``Z diag(x)^-1``: inputs from i per unit of j's output."""
        return self.Z / self.x[None, :]

    @property
    def A_star(self) -> np.ndarray:
        """Sales shares ``diag(x)^-1 Z``: share of i's output sold to j."""
        return self.Z / self.x[:, None]

    def leontief_inverse(self) -> np.ndarray:
        """``(I - A)^-1``, total output needed per unit of final demand."""
        return np.linalg.inv(np.eye(self.n_nodes) - self.A)

    def supply_matrix(self, weight: float = 1.0) -> np.ndarray:
        """``weight A^T``: supply shocks travel downstream (docs/model.md section 6).

        Row ``n`` says how much of node ``n``'s output depends on each supplier m: ``A[m, n]``,
        inputs from m per unit of n's output.
        """
        return weight * self.A.T

    def demand_matrix(self, weight: float = 1.0) -> np.ndarray:
        """``weight A*``: demand shocks travel upstream (docs/model.md section 6).

        Row ``n`` holds node ``n``'s sales shares ``A*[n, m] = Z[n, m] / x[n]``; with weight 1,
        a constant loss of final demand ``dy`` settles at Leontief's ``dx = (I - A)^-1 dy``,
        since ``(I - A*)^-1 = diag(x)^-1 (I - A)^-1 diag(x)``.
        """
        return weight * self.A_star

    def rebased(self, growth: dict[str, float], year: int, name: str) -> Economy:
        """The table in another year's prices and sizes: each region's output, value added and
        final demand scaled by ``growth[region]`` (its nominal GDP growth, in the table's
        currency), the intermediate flows balanced to them by RAS (:func:`ras`).

        Rows keep ``Z 1 + Y 1 = x`` and columns ``1' Z + va = x`` exactly; each region's GDP
        grows by its factor to within the RAS tolerance.
        """
        unknown = set(growth) ^ set(self.regions)
        if unknown:
            raise EconomyError(f"rebase: growth factors must name every region, not {unknown}")
        g = np.repeat([growth[r] for r in self.regions], len(self.sectors))
        if not np.all(np.isfinite(g) & (g > 0)):
            raise EconomyError("rebase: growth factors must be finite and > 0")
        x = self.x * g
        va = self.value_added * g
        sales = x - (self.x - self.Z.sum(axis=1)) * g  # intermediate sales: x less final use
        purchases = x - va
        # The two targets must hold the same total; the (small) gap goes to the sales.
        sales *= purchases.sum() / sales.sum()
        Z = ras(self.Z, sales, purchases)
        Y = None
        if self.Y is not None:
            final = x - Z.sum(axis=1)
            shares = self.Y / self.Y.sum(axis=1, keepdims=True)
            Y = shares * final[:, None]
        return Economy(self.regions, self.sectors, Z, x, Y, self.unit, name, self.files, year)

    def row_balance(self) -> np.ndarray:
        """Relative gap ``(Z 1 + Y 1 - x) / x`` of each node (needs final demand)."""
        if self.Y is None:
            raise EconomyError(f"economy {self.name!r} has no final demand to balance")
        return (self.Z.sum(axis=1) + self.Y.sum(axis=1) - self.x) / self.x

    def aggregate(
        self, regions: dict[str, str] | None = None, sectors: dict[str, str] | None = None
    ) -> Economy:
        """Merge regions and/or sectors by a mapping ``old label -> new label``.

        Labels absent from a mapping keep their name. Flows, output and final demand are summed;
        the new labels are ordered by first appearance.
        """
        rmap = {r: (regions or {}).get(r, r) for r in self.regions}
        smap = {s: (sectors or {}).get(s, s) for s in self.sectors}
        unknown = set(regions or {}) - set(self.regions)
        unknown |= set(sectors or {}) - set(self.sectors)
        if unknown:
            raise EconomyError(f"aggregate: unknown labels {sorted(unknown)}")
        new_r = tuple(dict.fromkeys(rmap.values()))
        new_s = tuple(dict.fromkeys(smap.values()))
        # Aggregation matrix G (new nodes x old nodes): new = G old, flows G Z G^T.
        G = np.zeros((len(new_r) * len(new_s), self.n_nodes))
        for i, (r, s) in enumerate((r, s) for r in self.regions for s in self.sectors):
            G[new_r.index(rmap[r]) * len(new_s) + new_s.index(smap[s]), i] = 1.0
        Y = None
        if self.Y is not None:
            GY = G @ self.Y
            if self.Y.shape[1] == len(self.regions):
                H = np.zeros((len(self.regions), len(new_r)))
                for k, r in enumerate(self.regions):
                    H[k, new_r.index(rmap[r])] = 1.0
                GY = GY @ H
            Y = GY
        return Economy(
            new_r, new_s, G @ self.Z @ G.T, G @ self.x, Y, self.unit, self.name, self.files,
            self.year,
        )  # fmt: skip


def ras(Z: np.ndarray, rows: np.ndarray, columns: np.ndarray, rtol: float = 1e-12) -> np.ndarray:
    """Scale ``Z`` by rows and columns (``diag(r) Z diag(s)``) until its row sums are ``rows``
    and its column sums ``columns`` (the RAS or biproportional method; Stone 1961, Miller and
    Blair 2009, section 7.4). Both targets must have the same total.

    Examples
    --------
    >>> Z = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> out = ras(Z, np.array([4.0, 6.0]), np.array([5.0, 5.0]))
    >>> np.round(out.sum(axis=1), 9).tolist(), np.round(out.sum(axis=0), 9).tolist()
    ([4.0, 6.0], [5.0, 5.0])
    """
    if not np.isclose(rows.sum(), columns.sum(), rtol=1e-9):
        raise EconomyError("ras: row and column targets must hold the same total")
    out = Z.astype(np.float64).copy()
    for _ in range(10_000):
        out *= (rows / np.where(out.sum(axis=1) > 0, out.sum(axis=1), 1.0))[:, None]
        out *= columns / np.where(out.sum(axis=0) > 0, out.sum(axis=0), 1.0)
        if np.allclose(out.sum(axis=1), rows, rtol=rtol, atol=0):
            return out
    raise EconomyError("ras: the flows did not balance in 10,000 rounds; check the targets")


def _split_nodes(labels: list[str], path: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Regions and sectors from ``REGION.SECTOR`` labels in region-major order."""
    try:
        pairs = [lab.split(".", 1) for lab in labels]
        regions = tuple(dict.fromkeys(p[0] for p in pairs))
        sectors = tuple(dict.fromkeys(p[1] for p in pairs))
    except IndexError:
        raise EconomyError(f"{path}: node labels must be written REGION.SECTOR") from None
    expected = [f"{r}.{s}" for r in regions for s in sectors]
    if labels != expected:
        raise EconomyError(
            f"{path}: nodes must list every sector of each region, region by region, in the same "
            "sector order"
        )
    return regions, sectors


def _from_folder(folder: Path, name: str) -> Economy:
    what = "an input-output table in riskengine's CSV format"
    z = read_table(folder / "intermediate.csv", EconomyError, what)
    if z.columns != z.rows:
        raise EconomyError(
            f"{folder / 'intermediate.csv'}: column nodes must equal row nodes, in the same order"
        )
    regions, sectors = _split_nodes(z.rows, folder / "intermediate.csv")
    x = read_table(folder / "output.csv", EconomyError, what)
    if x.rows != z.rows or x.values.shape[1] != 1:
        raise EconomyError(
            f"{folder / 'output.csv'}: needs columns node,output with the nodes of "
            "intermediate.csv in the same order"
        )
    files = [z.file, x.file]
    Y = None
    if (folder / "final_demand.csv").is_file():
        y = read_table(folder / "final_demand.csv", EconomyError, what)
        if y.rows != z.rows:
            raise EconomyError(
                f"{folder / 'final_demand.csv'}: rows must be the nodes of intermediate.csv"
            )
        Y = y.values
        files.append(y.file)
    unit = "USD million"
    if (folder / "unit.txt").is_file():
        text, file = read_text(folder / "unit.txt", EconomyError, "a one-line currency unit")
        unit = text.strip()
        if not unit or "\n" in unit or len(unit) > 40:
            raise EconomyError(f"{folder / 'unit.txt'}: give the currency unit on one short line")
        files.append(file)
    year = None
    if (folder / "year.txt").is_file():
        text, file = read_text(folder / "year.txt", EconomyError, "the table's price year")
        if not (text.strip().isdigit() and 1900 <= int(text) <= 2200):
            raise EconomyError(f"{folder / 'year.txt'}: give the year of the prices, e.g. 2024")
        year = int(text)
        files.append(file)
    return Economy(regions, sectors, z.values, x.values[:, 0], Y, unit, name, tuple(files), year)


def from_pymrio(io, name: str = "pymrio") -> Economy:
    """Build an :class:`Economy` from a calculated ``pymrio.IOSystem`` (needs Z, x and Y).

    pymrio is optional: this function only reads the IOSystem's pandas frames.
    """
    if getattr(io, "Z", None) is None or getattr(io, "x", None) is None:
        raise EconomyError(f"{name}: call IOSystem.calc_all() first, Z and x are missing")
    regions = tuple(dict.fromkeys(io.Z.index.get_level_values(0)))
    sectors = tuple(dict.fromkeys(io.Z.index.get_level_values(1)))
    if list(io.Z.index) != [(r, s) for r in regions for s in sectors]:
        raise EconomyError(f"{name}: Z must list every sector of each region, region by region")
    Y = None
    if getattr(io, "Y", None) is not None:
        by_region = io.Y.T.groupby(level=0, sort=False).sum().T
        Y = by_region.reindex(columns=list(regions)).to_numpy(dtype=np.float64)
    # pymrio keeps one unit per node in a DataFrame (or None); flows in several units cannot
    # be summed into one table.
    unit = getattr(io, "unit", None)
    units = {"M.EUR"} if unit is None else set(unit.to_numpy().ravel())
    if len(units) != 1:
        raise EconomyError(f"{name}: flows in several units {sorted(units)}; convert to one")
    return Economy(
        regions,
        sectors,
        io.Z.to_numpy(dtype=np.float64),
        io.x.to_numpy(dtype=np.float64).ravel(),
        Y,
        str(units.pop()),
        name,
    )


def load_economy(source: str | Path = DEFAULT_ECONOMY, base_dir: Path | None = None) -> Economy:
    """Load an input-output table.

    Parameters
    ----------
    source
        A built-in table's name (``"wiod2023_7x12"``, the default, or ``"wiod2011_7x12"``) or
        a folder in the project's CSV format (see the module docstring), absolute or relative
        to ``base_dir``.
    base_dir
        Folder that relative paths are read from (the scenario file's folder).

    Examples
    --------
    >>> eco = load_economy()
    >>> eco.n_nodes, eco.regions[:2], eco.sectors[-1]
    (84, ('USA', 'CHN'), 'OSERV')
    """
    builtin = resources.files("riskengine.data") / "economy" / str(source)
    if builtin.is_dir():
        return _from_folder(Path(str(builtin)), str(source))
    path = Path(source)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if not path.is_dir():
        raise EconomyError(
            f"economy {str(source)!r}: no such built-in table or folder (built-in: "
            f"{DEFAULT_ECONOMY}; a folder needs intermediate.csv and output.csv)"
        )
    return _from_folder(path, str(source))
