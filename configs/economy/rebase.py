"""Write ``wiod2023_7x12/``: the default 2011 table rebased to 2023 prices and sizes.

    python configs/economy/rebase.py

Each region's output, value added and final demand grow by its nominal GDP growth in US dollars
from 2011 to 2023 (``gdp.csv``: World Bank WDI, one vintage for every region; Taiwan, which WDI
does not cover, grows as Korea, a stated judgement); the intermediate flows are balanced to the
new rows and columns by RAS (``riskengine.economy.Economy.rebased``). 2023 is the latest year the
one consistent series covers. ``tests/test_economy.py`` checks that the committed table is what
this script writes.
"""

from __future__ import annotations

import csv
from pathlib import Path

import riskengine as rk

HERE = Path(__file__).resolve().parent
BASE, YEAR, NAME = "wiod2011_7x12", 2023, "wiod2023_7x12"


def growth() -> dict[str, float]:
    """Each region's GDP growth factor 2011 -> 2023 from ``gdp.csv``."""
    with (HERE / "gdp.csv").open(newline="") as fh:
        rows = {r["region"]: r for r in csv.DictReader(fh)}
    factor = {
        region: float(r["gdp_2023"]) / float(r["gdp_2011"])
        for region, r in rows.items()
        if r["gdp_2011"]
    }
    factor["TWN"] = factor["KOR"]  # judgement: see gdp.csv
    return factor


def rebased() -> rk.Economy:
    return rk.load_economy(BASE).rebased(growth(), YEAR, NAME)


def write(eco: rk.Economy, folder: Path) -> None:
    folder.mkdir(exist_ok=True)
    nodes = eco.node_labels

    def table(name: str, header: list[str], rows) -> None:
        with (folder / name).open("w", newline="") as fh:
            out = csv.writer(fh, lineterminator="\n")
            out.writerow(header)
            for label, values in zip(nodes, rows, strict=True):
                out.writerow([label, *(f"{v:.1f}" for v in values)])

    table("intermediate.csv", ["node", *nodes], eco.Z)
    table("output.csv", ["node", "output"], eco.x[:, None])
    table("final_demand.csv", ["node", *eco.regions], eco.Y)
    (folder / "unit.txt").write_text(f"{eco.unit}\n")
    (folder / "year.txt").write_text(f"{eco.year}\n")


if __name__ == "__main__":
    write(rebased(), HERE / NAME)
    print(f"wrote {HERE / NAME}")
