"""The wheel as a user gets it: built, installed into a fresh virtual environment outside the
checkout, and run there with no checkout in sight: the main job on a sample the wheel carries,
against the built-in sandbox, and `bulkpatch ui` far enough to serve its stylesheet.

The virtual environment gets the wheel alone (`--no-deps`, `--no-index`); its dependencies
are the test environment's own, seen through a `.pth` line written after the install, rather
than downloaded again: the tests reach no network but loopback, and what is under test is the
wheel's files, entry point and package data. Which `bulkpatch` runs is asserted, not assumed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from conftest import ROOT, SAMPLES, interrupt, started_ui

WINDOWS = os.name == "nt"
BIN, EXE = ("Scripts", ".exe") if WINDOWS else ("bin", "")


@dataclass
class Installed:
    """A virtual environment holding the wheel: its `bulkpatch` command, and where the
    package and its sample sheets landed."""

    venv: Path
    bulkpatch: Path
    package: Path
    samples: Path


def run(*args: str | Path, **options) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        encoding="utf-8",  # bulkpatch's, with PYTHONIOENCODING; pip's and Python's are ASCII
        errors="replace",
        timeout=300,
        **options,
    )


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    venv = tmp_path_factory.mktemp("installed") / "venv"
    made = run(sys.executable, "-m", "venv", "--without-pip", venv)
    assert made.returncode == 0, made.stderr
    python = venv / BIN / f"python{EXE}"
    # This pip installs into that interpreter's environment (`--python`), where nothing is
    # yet: it cannot take the test environment's bulkpatch for this one, nor touch it.
    added = run(
        *(sys.executable, "-m", "pip", "--python", python, "install"),
        *("--no-deps", "--no-index", "-q", wheel),
    )
    assert added.returncode == 0, added.stderr
    site = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    ours = {sysconfig.get_paths()[k] for k in ("purelib", "platlib")}
    (Path(site.stdout.strip()) / "test-environment.pth").write_text("\n".join(ours) + "\n")
    found = run(
        python,
        "-c",
        "import bulkpatch, bulkpatch.sandbox.config as c; print(bulkpatch.__file__); "
        "print(c.SAMPLES)",
        cwd=venv.parent,
    )
    assert found.returncode == 0, found.stderr
    package, samples = found.stdout.splitlines()
    return Installed(venv, venv / BIN / f"bulkpatch{EXE}", Path(package).parent, Path(samples))


def test_the_wheel_holds_every_module_and_file_the_checkout_ships(wheel):
    inside = set(zipfile.ZipFile(wheel).namelist())
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "bulkpatch").rglob("*.py")}
    assert modules - inside == set(), "a package missing from pyproject.toml's `packages`"
    shipped = [p for p in SAMPLES.iterdir() if p.suffix in (".csv", ".xlsx")]
    assert {f"bulkpatch/samples/{p.name}" for p in shipped} <= inside
    assert "bulkpatch/ui/static/ui.css" in inside and "bulkpatch/ui/templates/base.html" in inside
    assert not any(n.startswith(("samples/", "tests/")) for n in inside)  # no stray top level


def test_the_installed_package_is_the_wheels_with_its_samples(installed):
    assert installed.package.is_relative_to(installed.venv)  # not the checkout's
    assert not installed.package.is_relative_to(ROOT)
    assert installed.samples == installed.package / "samples"
    sheets = sorted(p.name for p in installed.samples.iterdir() if p.suffix in (".csv", ".xlsx"))
    assert sheets == [  # true-up-by-name.csv: the names-only sample (matching)
        "month-end.xlsx",
        "orders-billing-cycle.xlsx",
        "subscriptions-true-up.csv",
        "true-up-by-name.csv",
    ]


def environment() -> dict[str, str]:
    """This machine's environment, with nothing that would point Python at the checkout (the
    test's own cache folder stays: a fresh built-in sandbox)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return {**env, "PYTHONIOENCODING": "utf-8"}


def test_the_installed_command_applies_a_shipped_sample_to_the_sandbox(installed, tmp_path):
    sample = installed.samples / "subscriptions-true-up.csv"
    done = run(installed.bulkpatch, "apply", sample, cwd=tmp_path, env=environment())
    assert done.returncode == 1, done.stderr  # README: some rows are invalid or failed
    assert "Using the built-in sandbox" in done.stderr
    # README's figures for this sample on a fresh sandbox
    assert "37 rows to the built-in sandbox: 26 ok, 1 no_change, 8 invalid, 2 failed" in done.stdout
    folders = list((tmp_path / "reports").glob("*-subscriptions-true-up"))
    assert len(folders) == 1 and (folders[0] / "results.xlsx").is_file()


def test_the_installed_page_serves_its_stylesheet(installed, tmp_path):
    process, address = started_ui([str(installed.bulkpatch)], tmp_path, environment())
    try:
        with httpx.Client(follow_redirects=True, timeout=30) as browser:
            page = browser.get(address)
            sheet = re.search(r'<link rel="stylesheet" href="([^"]+)"', page.text)
            css = browser.get(address.split("/?")[0] + sheet.group(1)) if sheet else None
    finally:
        interrupt(process)
        said = process.communicate(timeout=30)[0]
    assert page.status_code == 200 and "bulkpatch" in page.text
    assert css is not None and css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert css.text == (ROOT / "bulkpatch" / "ui" / "static" / "ui.css").read_text("utf-8")
    assert process.returncode == 0 and "bulkpatch ui stopped." in said, said
