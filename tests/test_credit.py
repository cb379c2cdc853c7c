"""The credit layer: portfolios in, credit losses and CET1 depletion out (docs/model.md section 7).

Linearity across banks, the Vasicek closed form, the calibration and the supervisory replay,
portfolio and capital files (CSV, parquet, errors), and the command line.
"""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import numpy as np
import pytest
from dask_procs import riskengine
from scipy.special import ndtr, ndtri

import riskengine as rk
from riskengine.backends import run_block
from riskengine.errors import PortfolioError
from riskengine.portfolio import Portfolio, read_capital, read_portfolio
from riskengine.reference import simulate_block
from riskengine.scenario import SENSITIVITY
from riskengine.supervisory import builtin_supervisory, calibrate, load_supervisory, run_supervisory

SEED = 20261202
HEADER = "bank,region,segment,ead,pd,lgd\n"


@pytest.fixture(scope="module")
def library_book(truce_collapse) -> Portfolio:
    return read_portfolio("banking_systems_2024", truce_collapse.regions, truce_collapse.sectors)


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_banks_run_alone_lose_exactly_what_they_lose_together(
    truce_collapse, library_book, backend
):
    """Losses are linear in exposure: each bank's run gives that bank's losses of the run of all
    banks bit for bit (same seed), so the runs of single banks sum to the aggregate exactly; and
    twice the exposure loses exactly twice as much."""
    sc = truce_collapse.scenario
    whole = run_block(rk.compile_model(sc, portfolio=library_book), SEED, 0, 96, "year", backend)
    assert (whole["credit_loss_total"] > 0).any()
    total = np.zeros(96)
    for i, bank in enumerate(library_book.banks):
        model = rk.compile_model(sc, portfolio=library_book.select([bank]))
        alone = run_block(model, SEED, 0, 96, "year", backend)
        assert np.array_equal(alone["credit_loss"][..., 0], whole["credit_loss"][..., i])
        assert np.array_equal(alone["credit_loss_total"][:, 0], whole["credit_loss_total"][:, i])
        assert np.array_equal(
            alone["credit_loss_segment"][:, 0], whole["credit_loss_segment"][:, i]
        )
        total += alone["credit_loss_total"][:, 0]
    np.testing.assert_array_equal(total, whole["credit_loss_total"].sum(axis=1))
    double = dataclasses.replace(library_book, ead=library_book.ead * 2.0)
    twice = run_block(rk.compile_model(sc, portfolio=double), SEED, 0, 96, "year", backend)
    np.testing.assert_array_equal(twice["credit_loss_total"], 2.0 * whole["credit_loss_total"])


def _quiet_model(tiny_economy, book: Portfolio, months: int = 12):
    """A scenario whose only channel never starts: every driver is 0."""
    scenario = rk.Scenario(
        name="quiet",
        start="2027-01",
        horizon_months=months,
        channels={
            "only": {"p_on": 0.0, "p_off": 0.0, "severity": {"median": 0.5}, "exposure": 0.1}
        },
    )
    return rk.compile_model(scenario, tiny_economy, portfolio=book)


def test_homogeneous_one_factor_portfolio_is_vasicek(tiny_economy):
    """With no shock, a homogeneous portfolio with asset correlation rho loses, over one year,
    LGD EAD (PD(Z) - pd): its loss rate has Vasicek's large-portfolio distribution
    P(X <= x) = Phi((sqrt(1 - rho) Phi^-1(x) - Phi^-1(pd)) / sqrt(rho)), within sampling error
    (Kolmogorov's 99.9 % bound), and mean pd."""
    pd, rho, P = 0.02, 0.15, 20_000
    book = Portfolio(("B",), ("USA",), ("MFG",), np.array([1e6]), np.array([pd]),
                     np.array([1.0]), np.array([rho]), "vasicek")  # fmt: skip
    ds = rk.simulate(_quiet_model(tiny_economy, book), P, seed=7, resolution="horizon")
    x = np.sort(ds.credit_loss_total.values[:, 0] / 1e6 + ndtr(ndtri(pd)))
    closed = ndtr((np.sqrt(1.0 - rho) * ndtri(x) - ndtri(pd)) / np.sqrt(rho))
    empirical = np.arange(1, P + 1) / P
    assert np.max(np.abs(empirical - closed)) < 1.95 / np.sqrt(P)
    assert abs(x.mean() - pd) < 4.0 * x.std() / np.sqrt(P)
    # the same paths' factors give the same losses in the reference
    ref = simulate_block(_quiet_model(tiny_economy, book), 7, 0, 50, "horizon")
    np.testing.assert_allclose(ref["credit_loss_total"], ds.credit_loss_total.values[:50],
                               rtol=1e-6)  # fmt: skip


def test_no_shock_and_no_correlation_lose_exactly_nothing(tiny_economy):
    book = Portfolio(("B",) * 2, ("USA", "CHN"), ("MFG", "households"), np.array([1e6, 2e6]),
                     np.array([0.02, 1e-6]), np.array([0.4, 0.2]), np.zeros(2), "zero")  # fmt: skip
    block = run_block(_quiet_model(tiny_economy, book, 30), 3, 0, 40, "quarter", "cpu")
    for name in ("credit_loss", "credit_loss_total", "credit_loss_segment"):
        assert not block[name].any(), name


def test_the_credit_stage_books_each_path_as_if_alone(truce_collapse):
    """The stage books paths in batches of lanes (``CREDIT_LANES``): each path's losses are the
    same bits as when it is booked alone, for batches cut anywhere (P not a multiple of the
    lanes), with correlated classes and the cycle factor, quiet years (drivers all 0: no loss
    at all), a NaN driver, and periods of one to twelve months."""
    from riskengine.backends import _credit_model
    from riskengine.kernels.credit import CREDIT_LANES, book_credit

    cm = _credit_model(truce_collapse)
    K = cm.driver.shape[0]
    rng = np.random.default_rng(SEED)
    rho = rng.uniform(0.0, 0.3, K) * (rng.random(K) < 0.5)
    correlated = cm._replace(sqrt_rho=np.sqrt(rho), inv_sqrt_1m_rho=1.0 / np.sqrt(1.0 - rho))
    P, T, N = CREDIT_LANES + 7, 40, len(truce_collapse.arrays.loss_scale)
    year_q = rng.normal(0.01, 0.05, (P, 4, N)).astype(np.float32)
    year_q[rng.random(year_q.shape) < 0.3] = 0.0
    year_q[:5] = 0.0  # quiet paths
    year_q[6, 1, 2] = np.nan
    B, G = cm.bank.max() + 1, cm.segment.max() + 1

    def book(model, z, period_of_month, rows):
        n = period_of_month[-1] + 1
        out = (np.empty((len(rows), n, B), np.float32), np.empty((len(rows), B)),
               np.empty((len(rows), B, G), np.float32))  # fmt: skip
        book_credit(model, year_q[rows], z[rows], period_of_month, *out)
        return out

    for model, z in ((cm, np.zeros((P, 4))), (correlated, rng.normal(size=(P, 4)))):
        for period_of_month in (np.zeros(T, np.int64), np.arange(T) // 3, np.arange(T)):
            batch = book(model, z, period_of_month, np.arange(P))
            for p in range(P):
                alone = book(model, z, period_of_month, np.arange(p, p + 1))
                for together, one in zip(batch, alone, strict=True):
                    assert together[p].tobytes() == one[0].tobytes(), p
            if model is cm:
                assert not batch[1][:5].any()  # quiet, uncorrelated: no loss at all
            assert np.isnan(batch[1][6]).any() and not np.isnan(batch[1][7]).any()


def test_the_credit_stages_normal_cdf_is_scipys_to_rounding():
    """``phi_into`` (vectorized, its own exp) against ``scipy.special.ndtr`` over the whole
    line: 3e-15 absolute, 5e-13 relative where Phi > 1e-300 (the relative error of ``|x| /
    sqrt 2`` squared grows with ``x^2``), 0 below about 2^-1028, NaN for NaN, and the symmetry
    ``Phi(-x) = 1 - Phi(x)`` to rounding."""
    from riskengine.kernels.credit import phi_into

    extremes = [0.0, -0.0, 1e-300, -1e-300, 1e300, -1e300, np.inf, -np.inf]
    x = np.concatenate([np.linspace(-40.0, 40.0, 800_001), extremes])
    out = np.empty_like(x)
    phi_into(x, out, np.empty_like(x), np.empty_like(x))
    want = ndtr(x)
    assert np.max(np.abs(out - want)) < 3e-15
    normal = want > 1e-300
    assert np.max(np.abs(out[normal] / want[normal] - 1.0)) < 5e-13
    assert np.all(out[want < 2.0**-1040] == 0.0)
    assert np.all((out >= 0.0) & (out <= 1.0))
    nan = np.empty(3)
    phi_into(np.full(3, np.nan), nan, np.empty(3), np.empty(3))
    assert np.all(np.isnan(nan))
    mirrored = np.empty_like(x)
    phi_into(-x, mirrored, np.empty_like(x), np.empty_like(x))
    assert np.max(np.abs(out + mirrored - 1.0)) < 3e-15


def test_phi_coefficients_are_the_chebyshev_fit_of_log_erfcx():
    """PHI_COEFFICIENTS come from the fit the module's docstring describes: h(u) = log((z + 3)
    erfcx(z)), u = (z - 3) / (z + 3), interpolated at degree 24, in the power basis."""
    from numpy.polynomial import chebyshev
    from scipy.special import erfcx

    from riskengine.kernels.credit import PHI_COEFFICIENTS

    def h(u):
        with np.errstate(divide="ignore", invalid="ignore"):
            z = 3.0 * (1.0 + u) / (1.0 - u)
            return np.where(u >= 1.0, -0.5 * np.log(np.pi), np.log((z + 3.0) * erfcx(z)))

    fit = chebyshev.cheb2poly(chebyshev.chebinterpolate(h, 24))
    np.testing.assert_allclose(PHI_COEFFICIENTS, fit, rtol=0.0, atol=1e-14)


def test_sensitivity_is_the_calibration_to_the_fed_2025_test():
    """The library's PD sensitivity is the Federal Reserve 2025 calibration (2 decimals)."""
    fed = load_supervisory("fed_2025_severely_adverse")
    assert fed.role == "calibration"
    assert round(calibrate(fed), 2) == SENSITIVITY
    assert run_supervisory(fed, calibrate(fed)).model_bp == pytest.approx(fed.observed_bp)


def test_eba_2025_replay_lands_within_a_factor_of_two():
    """Out of sample: the calibration never saw the EBA's figures."""
    eba = load_supervisory("eba_2025_adverse")
    assert eba.role == "replay" and eba.band_factor == 2.0
    result = run_supervisory(eba)
    assert result.passed, f"model {result.model_bp:.0f} bp against {eba.observed_bp:.0f} bp"
    assert 0 < result.baseline < result.loss
    assert set(builtin_supervisory()) == {"eba_2025_adverse", "fed_2025_severely_adverse"}


# -- files ------------------------------------------------------------------------------------


def _regions_sectors(model):
    return model.regions, model.sectors


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bank,region,segment,ead,pd\nA,USA,AGR,1,0.01\n", "column 'lgd' is missing"),
        (HEADER + "A,USA,AGR,1,0.01,0.4\nA,MARS,AGR,1,0.01,0.4\n",
         "row 2, column 'region': unknown region 'MARS'"),
        (HEADER + "A,USA,BANKS,1,0.01,0.4\n", "row 1, column 'segment': unknown segment"),
        (HEADER + "A,USA,AGR,1,1.5,0.4\n", "row 1, column 'pd': '1.5' is not a number in (0, 1)"),
        (HEADER + "A,USA,AGR,1,0,0.4\n", "row 1, column 'pd': '0' is not a number in (0, 1)"),
        (HEADER + "A,USA,AGR,-5,0.01,0.4\n", "row 1, column 'ead': '-5' is not a number"),
        (HEADER + "A,USA,AGR,nan,0.01,0.4\n", "row 1, column 'ead': 'nan' is not a number"),
        (HEADER + "A,USA,AGR,1,0.01,x\n", "row 1, column 'lgd': 'x' is not a number"),
        (HEADER + "A,USA,AGR,1,0.01\n", "row 1 has 5 cells, the header 6"),
        (HEADER + ",USA,AGR,1,0.01,0.4\n", "row 1, column 'bank': '' is not a name"),
        (HEADER + "[bold]x[/],USA,AGR,1,0.01,0.4\n", "row 1, column 'bank'"),
        (HEADER, "no rows"),
        ("bank,region,segment,ead,pd,lgd,rho\nA,USA,AGR,1,0.01,0.4,1\n",
         "row 1, column 'rho': '1' is not a number in [0, 1)"),
    ],
)  # fmt: skip
def test_bad_portfolio_rows_are_named(tmp_path, truce_collapse, text, message):
    path = tmp_path / "book.csv"
    path.write_text(text)
    with pytest.raises(PortfolioError) as err:
        read_portfolio(path, *_regions_sectors(truce_collapse))
    assert message in str(err.value) and "\n" not in str(err.value)
    assert str(path) in str(err.value)


def test_binary_and_unknown_portfolios_are_refused(tmp_path, truce_collapse):
    path = tmp_path / "book.csv"
    path.write_bytes(b"\xff\xfe\x00b\x00a")
    with pytest.raises(PortfolioError, match="not UTF-8"):
        read_portfolio(path, *_regions_sectors(truce_collapse))
    with pytest.raises(PortfolioError, match="no such library portfolio; known: banking"):
        read_portfolio("banking_systems_1999", *_regions_sectors(truce_collapse))
    bad = tmp_path / "book.parquet"
    bad.write_bytes(b"PAR1 not really")
    with pytest.raises(PortfolioError, match="not a readable parquet file"):
        read_portfolio(bad, *_regions_sectors(truce_collapse))


def test_parquet_portfolio_equals_its_csv(tmp_path, truce_collapse):
    pq = pytest.importorskip("pyarrow.parquet")
    pa = pytest.importorskip("pyarrow")
    csv_path = tmp_path / "book.csv"
    csv_path.write_text(HEADER + "A,USA,AGR,100.5,0.01,0.4\nB,CHN,households,7,0.02,0.2\n")
    table = pa.table({"bank": ["A", "B"], "region": ["USA", "CHN"],
                      "segment": ["AGR", "households"], "ead": [100.5, 7.0],
                      "pd": [0.01, 0.02], "lgd": [0.4, 0.2], "note": ["x", "y"]})  # fmt: skip
    pq.write_table(table, tmp_path / "book.parquet")
    a = read_portfolio(csv_path, *_regions_sectors(truce_collapse))
    b = read_portfolio(tmp_path / "book.parquet", *_regions_sectors(truce_collapse))
    assert (a.bank, a.region, a.segment) == (b.bank, b.region, b.segment)
    for field in ("ead", "pd", "lgd", "rho"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def test_capital_table_needs_every_bank(tmp_path):
    path = tmp_path / "capital.csv"
    path.write_text("bank,cet1,rwa\nA,10,100\n")
    assert read_capital(path, ("A",)).rwa == {"A": 100.0}
    with pytest.raises(PortfolioError, match="no row for bank 'B' of the portfolio"):
        read_capital(path, ("A", "B"))
    path.write_text("bank,cet1,rwa\nA,10,0\n")
    with pytest.raises(PortfolioError, match="row 1, column 'rwa'"):
        read_capital(path, ("A",))


def test_portfolio_files_enter_the_run_identity(tmp_path, truce_collapse):
    path = tmp_path / "book.csv"
    path.write_text(HEADER + "A,USA,AGR,100,0.01,0.4\n")
    first = rk.compile_model(truce_collapse.scenario, portfolio=path)
    path.write_text(HEADER + "A,USA,AGR,1000,0.01,0.4\n")
    second = rk.compile_model(truce_collapse.scenario, portfolio=path)
    assert first.identity != second.identity
    assert str(path.resolve()) in [f.path for f in second.inputs]


def test_cet1_depletion_is_credit_loss_over_rwa(truce_collapse):
    ds = rk.simulate(truce_collapse, 300, seed=2, resolution="year", backend="reference")
    s = rk.risk_summary(ds, levels=[0.99], groups=["credit", "credit_total"], per_year=False)
    rwa = ds.rwa.values
    np.testing.assert_allclose(s.cet1_depletion_EL.sel(period="horizon").values,
                               s.credit_EL.sel(period="horizon").values / rwa * 1e4)  # fmt: skip
    np.testing.assert_allclose(s.cet1_ratio.values, ds.cet1.values / rwa * 100)
    seg = rk.credit_by_segment(ds)
    np.testing.assert_allclose(seg.EL.sum("segment").values, s.credit_EL.sel(period="horizon"),
                               rtol=1e-5)  # fmt: skip


# -- command line -----------------------------------------------------------------------------


def _cli(*args, cwd) -> subprocess.CompletedProcess:
    """The installed ``riskengine`` console script in a subprocess."""
    proc = riskengine(*args, cwd=cwd)
    stdout, stderr = proc.communicate(timeout=600)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def test_cli_run_with_portfolio_and_capital(tmp_path):
    (tmp_path / "banks.csv").write_text(
        HEADER + "North,USA,MACH,500000,0.01,0.4\nNorth,CHN,ELEC,200000,0.02,0.45\n"
        "South,EU27_GBR,households,800000,0.01,0.15\n"
    )
    (tmp_path / "capital.csv").write_text("bank,cet1,rwa\nNorth,60000,450000\nSouth,50000,400000\n")
    out = _cli("run", "truce_collapse", "--paths", "200", "--out", "run.zarr",
               "--resolution", "year", "--portfolio", "banks.csv", "--capital", "capital.csv",
               cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "North" in out.stdout and "South" in out.stdout and "CET1 depletion" in out.stdout
    ds = rk.open_run(tmp_path / "run.zarr")
    assert ds.bank.values.tolist() == ["North", "South"]
    assert ds.attrs["portfolio"] == str(tmp_path / "banks.csv")
    report = _cli("report", "run.zarr", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    page = (tmp_path / "run-report" / "index.html").read_text()
    assert "CET1 depletion by credit losses" in page and "North" in page


def test_cli_bad_portfolio_exits_2_in_one_line(tmp_path):
    (tmp_path / "banks.csv").write_text(HEADER + "North,USA,MACH,500000,2,0.4\n")
    out = _cli("run", "truce_collapse", "--paths", "10", "--out", "run.zarr",
               "--portfolio", "banks.csv", cwd=tmp_path)  # fmt: skip
    assert out.returncode == 2
    assert "row 1, column 'pd'" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run.zarr").exists()
    missing = _cli("run", "truce_collapse", "--paths", "10", "--out", "run.zarr",
                   "--portfolio", "nothere.csv", cwd=tmp_path)  # fmt: skip
    assert missing.returncode == 2 and "file not found" in missing.stderr
    assert not Path(tmp_path / "run.zarr").exists()
