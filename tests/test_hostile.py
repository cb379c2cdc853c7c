"""Hostile and careless input through the real command line (subprocesses, real stores): every
case ends in exit 2 with one line naming the field or file and the fix, or in a run whose cube is
finite; nothing existing is overwritten or lost; nothing hangs.

Scenario-file cases one by one are in test_scenario_validation.py; this module holds the run's
arguments, stores, clusters, races, and the property tests that mutate the library's files.
"""

from __future__ import annotations

import contextlib
import copy
import http.server
import json
import re
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
import zarr
from cubes import BACKEND, snapshot
from dask_procs import dask_cluster, riskengine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import riskengine as rk
from riskengine.engine import simulating
from riskengine.reference import simulate as reference_simulate

SEED = 5


def finish(proc, timeout: float = 240) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        proc.kill()
    return proc.returncode, out, err


def refused(result: tuple[int, str, str], pattern: str) -> None:
    """Exit 2, one line on stderr matching ``pattern``, no traceback."""
    code, _, err = result
    assert code == 2, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: ")
    assert re.search(pattern, err), err


@pytest.fixture(scope="module")
def existing(tmp_path_factory) -> Path:
    """A complete store of 20 paths, yearly, cut into blocks of 10."""
    store = tmp_path_factory.mktemp("existing") / "run.zarr"
    rk.simulate("truce_collapse", 20, SEED, store=store, backend=BACKEND, block_paths=10,
                resolution="year")  # fmt: skip
    return store


RUN = ["run", "truce_collapse", "--seed", SEED, "--backend", BACKEND, "--resolution", "year"]


# --- resource guards --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (["--paths", 3_000_000_000_000_000], r"needs about .* GB but .* free"),
        (["--paths", 2**62], r"paths must be below 2\*\*62"),
        (["--paths", 20, "--block-paths", 10**9], r"block_paths 1000000000: a block would hold"),
        (["--paths", 20, "--workers", 1000], r"--workers 1000: .* give at most \d+"),
        (["--paths", 20, "--workers", -2], r"--workers must be a positive integer"),
    ],
)
def test_guards_refuse_before_anything_is_replaced(existing, args, pattern):
    """With --overwrite too: the existing store keeps every byte (it was once wiped first)."""
    before = snapshot(existing)
    refused(finish(riskengine(*RUN, *args, "--overwrite", "--out", existing)), pattern)
    assert snapshot(existing) == before


# --- stores: damaged, incomplete, read-only ---------------------------------------------------


def test_damaged_store_metadata_is_refused_on_resume(tmp_path):
    store = tmp_path / "run.zarr"
    rk.simulate("truce_collapse", 20, SEED, store=store, backend=BACKEND, block_paths=10,
                resolution="year")  # fmt: skip
    flags = zarr.open_array(store / "riskengine" / "block_done", mode="r+")
    flags.attrs["block_paths"] = 0
    refused(
        finish(riskengine(*RUN, "--paths", 20, "--resume", "--out", store)),
        r"the store's metadata is damaged \(paths 20, block paths 0, 2 blocks\)",
    )


def test_a_corrupt_chunk_is_reported_in_one_line(tmp_path, existing):
    store = tmp_path / "run.zarr"
    shutil.copytree(existing, store)
    chunk = next(p for p in (store / "loss" / "c" / "1").rglob("*") if p.is_file())
    chunk.write_bytes(b"not blosc" * 20)
    refused(
        finish(riskengine("report", store)),
        r"run\.zarr: a chunk of the cube cannot be read \(RuntimeError: .*\); the store is damaged",
    )


def test_report_from_inside_the_store(existing, tmp_path):
    code, _out, err = finish(riskengine("report", ".", cwd=existing))
    assert code == 0, err
    assert (existing.parent / "run-report" / "index.html").is_file()


def test_report_never_writes_through_a_symlink_in_out(existing, tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    outside = tmp_path / "outside.png"
    (out / "heatmap.png").symlink_to(outside)  # dangling: the target does not exist
    code, _, err = finish(riskengine("report", existing, "--out", out, "--overwrite"))
    assert code == 0, err
    assert not outside.exists()
    assert (out / "heatmap.png").is_file() and not (out / "heatmap.png").is_symlink()


@contextlib.contextmanager
def tmpfs(path: Path, options: str):
    """A small tmpfs mounted at ``path`` (root only: skips where mounting is not permitted)."""
    path.mkdir()
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                           capture_output=True, text=True)  # fmt: skip
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mount.stderr.strip() or mount.returncode}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def test_a_read_only_out_folder_is_refused_in_one_line(tmp_path):
    with tmpfs(tmp_path / "ro", "ro,size=1m") as out:
        refused(
            finish(riskengine(*RUN, "--paths", 4, "--out", out)),
            r"ro: cannot write there \(Read-only file system\); choose a writable --out",
        )


def test_an_out_that_is_a_small_mount_point_is_measured_itself(tmp_path):
    """The disk check reads the file system of --out itself: a 1 MiB tmpfs mounted there on a
    large disk would otherwise fill up."""
    with tmpfs(tmp_path / "small", "size=1m") as out:
        refused(
            finish(riskengine(*RUN, "--paths", 20_000, "--out", out)),
            r"small: the store needs about 0\.0\d+ GB but .*small has 0\.00\d+ GB free",
        )
        assert list(out.iterdir()) == []


# --- run identity: every input file -----------------------------------------------------------


def test_resume_refuses_a_changed_input_file(tmp_path):
    """The portfolio changed between the interrupted run and its resume: refused (an exposure
    table once mixed two models in one store, credit losses x10 in the resumed blocks)."""
    scenario = Path(rk.builtin_scenarios()["truce_collapse"]).read_text()
    table = tmp_path / "ead.csv"

    def write_table(value: float) -> None:
        table.write_text(f"bank,region,segment,ead,pd,lgd\nB,CHN,ELEC,{value},0.01,0.4\n")

    write_table(1000.0)
    (tmp_path / "s.yaml").write_text(
        re.sub(r"(?s)\ncredit:.*", "\ncredit:\n  portfolio: ead.csv\n", scenario)
    )
    store = tmp_path / "run.zarr"
    args = ["run", tmp_path / "s.yaml", "--paths", 20, "--seed", SEED, "--backend", BACKEND,
            "--resolution", "year", "--block-paths", 10, "--out", store]  # fmt: skip
    assert finish(riskengine(*args))[0] == 0
    zarr.open_array(store / "riskengine" / "block_done", mode="r+")[1] = 0  # as if killed
    attrs = rk.store.read_run(store).attrs
    assert [Path(p).name for p, _ in attrs["input_files"]][-1] == "ead.csv"
    write_table(10000.0)
    refused(finish(riskengine(*args, "--resume")), r"cannot resume: the model's inputs differ")
    write_table(1000.0)
    code, _, err = finish(riskengine(*args, "--resume"))
    assert code == 0, err


# Static capital figures that are NaN by contract where no capital table is given.
NOT_GIVEN = ("cet1", "rwa")


# --- names that are markup to rich ------------------------------------------------------------


@pytest.mark.parametrize("name", ["[bold]x[/oops]", "[/]", "a [link=file:///etc]b"])
def test_a_scenario_name_is_printed_as_written(tmp_path, name):
    text = Path(rk.builtin_scenarios()["truce_collapse"]).read_text()
    path = tmp_path / "s.yaml"
    path.write_text(re.sub(r"(?m)^name: .*$", f"name: {json.dumps(name)}", text, count=1))
    store = tmp_path / "run.zarr"
    code, out, err = finish(riskengine("run", path, "--paths", 4, "--backend", BACKEND,
                                       "--resolution", "horizon", "--out", store))  # fmt: skip
    assert code == 0, err
    assert name in out.replace("\n", "")
    code, out, err = finish(riskengine("validate", path))
    assert code == 0 and f"{name}: valid" in out, err


# --- clusters: every wait has a deadline -------------------------------------------------------


def test_a_file_that_is_no_scheduler_file(tmp_path):
    bad = tmp_path / "scheduler.json"
    bad.write_text("{}")
    refused(
        finish(riskengine(*RUN, "--paths", 4, "--scheduler", bad, "--out", tmp_path / "r.zarr")),
        r"not a dask scheduler file",
    )
    assert not (tmp_path / "r.zarr").exists()


class _Silent:
    """A TCP listener that accepts connections and never says a word."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                self.held.append(self.sock.accept()[0])
            except OSError:
                return


def test_a_listener_that_never_answers_is_given_up_on(tmp_path):
    silent = _Silent()
    env = {"RISKENGINE_CONNECT_SECONDS": "3"}
    start = time.monotonic()
    proc = riskengine(*RUN, "--paths", 4, "--scheduler", f"tcp://127.0.0.1:{silent.port}",
                      "--out", tmp_path / "r.zarr", env=env)  # fmt: skip
    refused(finish(proc, timeout=60), r"no dask scheduler answers at tcp://127\.0\.0\.1:\d+")
    assert time.monotonic() - start < 30
    silent.sock.close()


def test_an_http_server_is_no_scheduler(tmp_path):
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {"RISKENGINE_CONNECT_SECONDS": "5"}
    try:
        proc = riskengine(*RUN, "--paths", 4, "--scheduler",
                          f"tcp://127.0.0.1:{server.server_port}", "--out", tmp_path / "r.zarr",
                          env=env)  # fmt: skip
        refused(finish(proc, timeout=60), r"no dask scheduler answers")
    finally:
        server.shutdown()


def test_a_scheduler_without_workers_is_given_up_on(tmp_path):
    with dask_cluster(tmp_path, n_workers=0) as cluster:
        env = {"RISKENGINE_WORKERS_SECONDS": "3"}
        proc = riskengine(*RUN, "--paths", 4, "--scheduler", cluster.scheduler_file,
                          "--out", tmp_path / "r.zarr", env=env)  # fmt: skip
        refused(finish(proc, timeout=60), r"has no worker after 3 s; start workers")
    assert not (tmp_path / "r.zarr").exists()


def test_a_bad_timeout_setting_is_named(tmp_path):
    env = {"RISKENGINE_CONNECT_SECONDS": "soon"}
    refused(
        finish(
            riskengine(
                *RUN,
                "--paths",
                4,
                "--scheduler",
                "tcp://127.0.0.1:9",
                "--out",
                tmp_path / "r.zarr",
                env=env,
            )
        ),
        r"RISKENGINE_CONNECT_SECONDS='soon': give a number of seconds",
    )


# --- races ------------------------------------------------------------------------------------


def test_a_store_stays_locked_until_the_run_is_done_with_it(tmp_path):
    """While a run reads its figures (the CLI prints its table there), a second run cannot
    replace the store and a report cannot read it half-written."""
    store = tmp_path / "run.zarr"
    with simulating("truce_collapse", 20, SEED, store, BACKEND, resolution="year") as ds:
        refused(
            finish(riskengine(*RUN, "--paths", 20, "--overwrite", "--out", store)),
            r"another process is using this store",
        )
        refused(finish(riskengine("report", store)), r"a run is writing this store")
        assert float(ds.loss.sum()) > 0  # the first run still reads its cube
    assert finish(riskengine("report", store))[0] == 0


# --- property: mutated library scenarios --------------------------------------------------------

HOSTILE_VALUES = [
    float("nan"), float("inf"), -float("inf"), 0, -1, 1e308, -1e308, 5e-324, 2**70, True,
    None, "", "x", "2290-01", "1600-01", "stationary", [], {}, [1, 2], {"default": 2.0},
    0.5, 1, 1200, 1201, 1e-12,
]  # fmt: skip
LIBRARY = {name: yaml.safe_load(Path(p).read_text()) for name, p in rk.builtin_scenarios().items()}


def _places(node, path=()):
    """Every (path, value) of a nested YAML document, mappings and lists included."""
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _places(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _places(value, (*path, i))


@st.composite
def mutated_scenarios(draw) -> str:
    """A library scenario with one to three hostile edits, as YAML text."""
    data = copy.deepcopy(LIBRARY[draw(st.sampled_from(sorted(LIBRARY)))])
    for _ in range(draw(st.integers(1, 3))):
        places = [p for p, _ in _places(data) if p]
        where = draw(st.sampled_from(places))
        parent = data
        for key in where[:-1]:
            parent = parent[key]
        kind = draw(st.sampled_from(["value", "delete", "unknown key", "rename"]))
        if kind == "value":
            parent[where[-1]] = draw(st.sampled_from(HOSTILE_VALUES))
        elif kind == "delete":
            del parent[where[-1]]
        elif kind == "unknown key" and isinstance(parent, dict):
            parent["surplus"] = draw(st.sampled_from(HOSTILE_VALUES))
        elif kind == "rename" and isinstance(parent, dict):
            parent[draw(st.sampled_from(["chips", "1", "USA", "p_on", "default"]))] = parent.pop(
                where[-1]
            )
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(mutated_scenarios())
def test_a_mutated_scenario_is_refused_in_one_line_or_runs_finite(tmp_path, text):
    path = tmp_path / "mutated.yaml"
    path.write_text(text)
    try:
        model = rk.compile_model(rk.load_scenario(path))
    except rk.InputError as exc:
        message = str(exc)
        assert message and "\n" not in message and len(message) < 1000
        return
    cube = reference_simulate(model, 3, SEED, resolution="year")
    for name in cube.data_vars:
        assert np.isfinite(cube[name].values).all() or name in NOT_GIVEN, name


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(mutated_scenarios())
def test_a_mutated_scenario_through_the_command_line(tmp_path_factory, text):
    folder = tmp_path_factory.mktemp("cli")
    path = folder / "mutated.yaml"
    path.write_text(text)
    store = folder / "run.zarr"
    code, _, err = finish(riskengine("run", path, "--paths", 3, "--backend", "reference",
                                     "--resolution", "year", "--out", store))  # fmt: skip
    if code == 2:
        refused((code, "", err), r".")
        assert not store.exists()
    else:
        assert code == 0, err
        ds = rk.open_run(store)
        for name in ds.data_vars:
            assert np.isfinite(ds[name].values).all() or name in NOT_GIVEN, name
