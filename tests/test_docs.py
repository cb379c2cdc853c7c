"""The docs quote what the library computes: `python docs/build.py --check` recomputes every
generated block (tables, numbers, the risk table) and fails naming each one that differs."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_docs_quote_what_the_library_computes():
    result = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "build.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("checked ")


def test_a_stale_number_fails_the_check(tmp_path):
    """The check compares: a block edited by hand no longer matches, and a build mends it."""
    spec = importlib.util.spec_from_file_location("docs_build", ROOT / "docs" / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    doc = tmp_path / "x.md"
    doc.write_text("a\n<!-- build:on-shares -->\nstale 0.99\n<!-- /build:on-shares -->\nb\n")
    only = ["--only", "on-shares"]
    assert build.main(["--check", *only], files=[doc]) == 1
    assert "stale" in doc.read_text()  # --check writes nothing
    assert build.main(only, files=[doc]) == 0
    text = doc.read_text()
    assert "stale" not in text and "p_on / (p_on + p_off)" in text and text.endswith("-->\nb\n")
    assert build.main(["--check", *only], files=[doc]) == 0
