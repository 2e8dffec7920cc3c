"""`fiscalgate new-authority`: the folder it writes is a working authority that the registry, the
shared contract tests and the linters accept, with no other edit."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fiscalgate.authorities import scaffold

ROOT = Path(__file__).parents[2]
BOUND = 120  # seconds for each subprocess; the whole test takes a few seconds


def test_codes_and_countries_are_checked_before_anything_is_written(tmp_path: Path) -> None:
    for code, country, complaint in [
        ("sn_demo", "SN", "cc-name"),
        ("sn-demo", "SEN", "ISO 3166"),
        ("tg-demo", "SN", "must start with its country"),
        ("ci-fne", "CI", "already names"),
        ("ci-fne2", "CI", None),
    ]:
        if complaint is None:
            assert scaffold.check(code, country, "XOF").pkg == "ci_fne2"
            continue
        with pytest.raises(scaffold.ScaffoldError, match=complaint):
            scaffold.check(code, country, "XOF")
    with pytest.raises(scaffold.ScaffoldError, match="ISO 4217"):
        scaffold.check("sn-demo", "SN", "francs")
    (tmp_path / "__init__.py").write_text("no marker here\n", encoding="utf-8")
    with pytest.raises(scaffold.ScaffoldError, match="marker"):
        scaffold.generate("sn-demo", "SN", package_dir=tmp_path, tests_dir=None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["__init__.py"]


def test_an_existing_folder_is_never_overwritten(tmp_path: Path) -> None:
    package_dir = tmp_path / "authorities"
    shutil.copytree(
        ROOT / "src/fiscalgate/authorities", package_dir, ignore=shutil.ignore_patterns("__pycache__")
    )
    (package_dir / "sn_demo").mkdir()
    before = (package_dir / "__init__.py").read_text(encoding="utf-8")
    with pytest.raises(scaffold.ScaffoldError, match="already exists"):
        scaffold.generate("sn-demo", "SN", package_dir=package_dir, tests_dir=None)
    assert (package_dir / "__init__.py").read_text(encoding="utf-8") == before
    assert list((package_dir / "sn_demo").iterdir()) == []


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(cwd / "src")}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=BOUND
    )


def test_a_generated_authority_works_in_a_copy_of_the_package(tmp_path: Path) -> None:
    """Generate sn-demo into a copy of the source tree, then, in that copy: the registry lists it
    after the real ones, its own tests and the shared contract tests pass, and it lints clean."""
    shutil.copytree(ROOT / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    tests = tmp_path / "tests" / "authorities"
    tests.mkdir(parents=True)
    shutil.copy(ROOT / "tests/authorities/test_shared_contract.py", tests)

    made = _run(["-m", "fiscalgate.cli", "new-authority", "sn-demo", "--country", "SN",
                 "--package-dir", "src/fiscalgate/authorities", "--tests-dir", "tests/authorities"],
                tmp_path)  # fmt: skip
    assert made.returncode == 0, made.stderr
    package = tmp_path / "src/fiscalgate/authorities/sn_demo"
    shape = {"descriptor.py", "settings.py", "schemas.py", "totals.py", "convert.py", "client.py",
             "errors.py", "printing.py", "driver.py", "regime.py", "README.md", "__init__.py"}  # fmt: skip
    assert shape <= {p.name for p in package.iterdir()}
    assert {"app.py", "state.py", "cli.py"} <= {p.name for p in (package / "simulator").iterdir()}

    listed = _run(["-m", "fiscalgate.cli", "authorities"], tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[0] for line in listed.stdout.splitlines()][-1] == "sn-demo"

    checked = _run(
        ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "sn-demo or sn_demo", "tests"], tmp_path
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert " passed" in checked.stdout and "failed" not in checked.stdout

    for lint in (["check", str(package), str(tests / "sn_demo")], ["format", "--check", str(package)]):
        linted = _run(["-m", "ruff", *lint], tmp_path)
        assert linted.returncode == 0, linted.stdout + linted.stderr
