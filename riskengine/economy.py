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

__all__ = ["DEFAULT_ECONOMY", "Economy", "EconomyError", "load_economy"]

DEFAULT_ECONOMY = "wiod2011_7x12"


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
    """

    regions: tuple[str, ...]
    sectors: tuple[str, ...]
    Z: np.ndarray
    x: np.ndarray
    Y: np.ndarray | None = None
    unit: str = "USD million"
    name: str = ""
    files: tuple[InputFile, ...] = ()  # the files it was read from, with their digests

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

    def propagation_matrix(self, w_down: float, w_up: float) -> np.ndarray:
        """``M = w_down A^T + w_up A*`` (MODEL.md section 6).

        Row ``n`` of ``M`` says how node ``n``'s inoperability responds to the others': the
        downstream term through missing inputs (``A[m, n]``, inputs from m per unit of n), the
        upstream term through lost sales (``A*[n, m]``, share of n's sales going to m).
        """
        return w_down * self.A.T + w_up * self.A_star

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
            new_r, new_s, G @ self.Z @ G.T, G @ self.x, Y, self.unit, self.name, self.files
        )


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
    return Economy(regions, sectors, z.values, x.values[:, 0], Y, unit, name, tuple(files))


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
        A built-in table's name (``"wiod2011_7x12"``, the default) or a folder in the project's
        CSV format (see the module docstring), absolute or relative to ``base_dir``.
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
