"""The package as people use it: the README's Python example as written, `__all__`, and a wheel
that carries the sample sheets the sandbox seeds from."""

from __future__ import annotations

import inspect
import os
import re
import shutil
import subprocess
import sys
import zipfile

from conftest import ROOT, SAMPLES

import bulkpatch


def readme_python() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Using it from Python") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_python_example_runs_as_written(tmp_path):
    shutil.copytree(SAMPLES, tmp_path / "samples")
    (tmp_path / "example").mkdir()
    script = tmp_path / "example" / "readme.py"
    script.write_text(readme_python(), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "{'valid': 28, 'invalid': 8, 'no_change': 1}"  # the README's own comment
    assert lines[-1].startswith("{'ok': 20, 'accepted': 0, 'no_change': 0, 'invalid': 0,")
    assert (tmp_path / "reports" / "try" / "check.csv").exists()


def test_every_name_in_all_is_importable_from_the_package():
    assert "apply_file" in bulkpatch.__all__ and "check_file" in bulkpatch.__all__
    for name in bulkpatch.__all__:
        assert getattr(bulkpatch, name) is not None
    namespace: dict = {}
    exec("from bulkpatch import *", namespace)
    assert set(bulkpatch.__all__) <= set(namespace)


def test_all_is_what_readme_documents_and_the_functions_spell_out_their_keywords():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Using it from Python") :]
    said = section[section.index("exactly these names") : section.index("## Layout")]
    documented = set(re.findall(r"`([A-Za-z_]+)`", said)) - {"settings"}
    assert documented == set(bulkpatch.__all__)
    for name in bulkpatch.__all__:
        thing = getattr(bulkpatch, name)
        if inspect.isfunction(thing):
            kinds = {p.kind for p in inspect.signature(thing).parameters.values()}
            assert inspect.Parameter.VAR_KEYWORD not in kinds, name


def test_a_wheel_carries_the_samples_the_sandbox_seeds_from(tmp_path, wheel):
    zipfile.ZipFile(wheel).extractall(tmp_path / "unpacked")
    windows = {"SYSTEMROOT": os.environ["SYSTEMROOT"]} if "SYSTEMROOT" in os.environ else {}
    seeded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import bulkpatch.sandbox.seed as s; print(s.__file__); "
            "print(sorted(p.name for p in s.SeedSpec.samples().sheets))",
        ],
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path / "unpacked"), "PATH": "", **windows},  # Python needs it
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert seeded.returncode == 0, seeded.stderr
    where, names = seeded.stdout.splitlines()
    assert where.startswith(str(tmp_path / "unpacked"))  # the wheel's copy, not the checkout
    assert names == (  # true-up-by-name.csv: the names-only sample (matching)
        "['month-end.xlsx', 'orders-billing-cycle.xlsx', 'subscriptions-true-up.csv', "
        "'true-up-by-name.csv']"
    )
