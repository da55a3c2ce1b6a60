"""What every install and every newcomer sees first: the package metadata and the fast test tier."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_license_is_an_spdx_string_with_a_setuptools_that_reads_it() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["license"] == "Apache-2.0"  # the table form is deprecated (gone in 2027)
    requires = " ".join(project["build-system"]["requires"])
    version = re.search(r"setuptools>=([\d.]+)", requires)
    assert version is not None and tuple(int(p) for p in version[1].split(".")[:2]) >= (77, 0)


def test_make_test_fast_leaves_out_every_tier_that_needs_the_control_plane() -> None:
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\ntest-fast:", 1)[1].split("\n\n", 1)[0]
    assert '-m "not slow and not integration"' in recipe
    markers = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["markers"]
    assert {m.split(":", 1)[0] for m in markers} == {"slow", "integration"}
    assert '`pytest -m "not slow and not integration"`' in (ROOT / "README.md").read_text()
