"""`riskengine report` end to end: a real run's store on disk, the CLI in a subprocess."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from pathlib import Path

import pytest
import xarray as xr
import zarr
from matplotlib.image import imread

import riskengine as rk
from riskengine.formatting import display_unit, format_amount
from riskengine.reference import simulate
from riskengine.report import FIGURES, write_report
from riskengine.testing import raise_if_dask_computes, write_cube

RISKENGINE = str(Path(sys.executable).with_name("riskengine"))


def riskengine(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [RISKENGINE, *map(str, args)], capture_output=True, text=True, timeout=300, check=False
    )


@pytest.fixture(scope="module")
def run_store(truce_collapse, tmp_path_factory) -> Path:
    store = tmp_path_factory.mktemp("report") / "run.zarr"
    write_cube(simulate(truce_collapse, paths=400, seed=5), store)
    return store


@pytest.fixture(scope="module")
def report_run(run_store):
    out = run_store.parent / "report"
    return out, riskengine("report", run_store, "--out", out, "--levels", "0.9,0.99")


def test_report_writes_every_figure_as_a_real_png(report_run):
    out, result = report_run
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["index.html", *(f"{name}.png" for name in FIGURES)]
    )
    for name in FIGURES:
        image = imread(out / f"{name}.png")
        assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 500, name
        assert image[..., :3].std() > 0.05, f"{name}.png is nearly blank"


def test_html_embeds_each_figure_and_opens_offline(report_run):
    out, _ = report_run
    page = (out / "index.html").read_text(encoding="utf-8")
    pattern = r"<img src='data:image/png;base64,([^']+)' alt='(\w+)\.png'>"
    by_name = {name: data for data, name in re.findall(pattern, page)}
    assert sorted(by_name) == sorted(FIGURES)
    for name, data in by_name.items():
        assert base64.b64decode(data) == (out / f"{name}.png").read_bytes()
    assert not re.search(r"(src|href)=['\"]https?://", page)  # nothing fetched from the network


def test_table_printed_and_in_the_page_shows_the_run_figures(run_store, report_run):
    out, result = report_run
    summary = rk.risk_summary(xr.open_zarr(run_store), levels=[0.99])
    scale, unit = display_unit(summary.attrs["units"])
    s = summary.sel(period="horizon", level=0.99)
    total_el = format_amount(scale * float(s.total_EL))
    total_var = f"{format_amount(scale * float(s.total_VaR))} ± "
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "Output VaR 99 %" in page and "Value added VaR 99 %" in page
    for text in (result.stdout, page):  # the terminal's table wraps its headers at 80 columns
        assert unit in text and "Value" in text and "Output" in text
        assert total_el in text and total_var in text
    assert result.stderr == ""


def test_report_streams_a_lazy_cube_in_a_few_passes(run_store, tmp_path):
    """Every figure from one analysis: a bounded number of passes over the cube's chunks (the
    analysis' eight, and one over the small per-path credit losses by segment)."""
    with raise_if_dask_computes(max_computes=9):
        report = write_report(xr.open_zarr(run_store), tmp_path, levels=[0.99])
    assert report.html.stat().st_size > 0


def test_report_at_horizon_resolution(truce_collapse, tmp_path):
    ds = simulate(truce_collapse, paths=100, seed=2, resolution="horizon")
    report = write_report(ds, tmp_path, levels=[0.95])
    for path in report.figures.values():
        assert imread(path)[..., :3].std() > 0.05
    assert list(report.summary.period.values) == ["horizon"]


def _refused(result: subprocess.CompletedProcess, pattern: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert re.search(pattern, result.stderr), result.stderr


def test_bad_input_exits_2_with_one_line(run_store, tmp_path):
    _refused(riskengine("report", tmp_path / "missing.zarr"), r"missing\.zarr: no such run store")
    empty = tmp_path / "empty"
    empty.mkdir()
    _refused(riskengine("report", empty), r"empty: not a zarr store")
    not_cube = tmp_path / "not_cube.zarr"
    write_cube(xr.open_zarr(run_store).drop_vars("weight"), not_cube)
    _refused(riskengine("report", not_cube), r"not a riskengine cube: variable 'weight'")
    for levels, message in (("0.9,x", "comma-separated"), ("0.99,1.5", "between 0 and 1")):
        _refused(riskengine("report", run_store, "--levels", levels), f"--levels.*{message}")
    not_dir = tmp_path / "file"
    not_dir.write_text("keep")
    _refused(riskengine("report", run_store, "--out", not_dir), "not a folder")
    assert not_dir.read_text() == "keep"


def test_report_on_an_interrupted_run_says_how_to_finish_it(tmp_path):
    """The same checks as rk.open_run: an incomplete run is refused with the resume hint, not
    read as a corrupt store (its unwritten chunks would read as NaN)."""
    store = tmp_path / "run.zarr"
    rk.simulate("truce_collapse", 40, 3, store=store, block_paths=20, resolution="horizon")
    zarr.open_array(store / "riskengine" / "block_done", mode="r+")[1] = 0  # as if killed
    result = riskengine("report", store)
    _refused(result, r"the run is incomplete \(1 of 2 blocks written\); finish it with .*--resume")
    assert not (tmp_path / "run-report").exists()
    with pytest.raises(rk.StoreError, match="incomplete"):
        rk.open_run(store)


def test_existing_report_is_kept_without_overwrite(run_store, report_run):
    out, _ = report_run
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    _refused(riskengine("report", run_store, "--out", out), "already holds a report")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    again = riskengine("report", run_store, "--out", out, "--levels", "0.95", "--overwrite")
    assert again.returncode == 0, again.stderr
    assert "Output VaR 95 %" in (out / "index.html").read_text(encoding="utf-8")
    assert (out / "heatmap.png").read_bytes() != before["heatmap.png"]  # ES 95 %, not 99 %
