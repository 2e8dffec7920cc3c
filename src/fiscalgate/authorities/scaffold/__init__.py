"""`fiscalgate new-authority CODE --country CC`: a new authority folder in the house shape.

The templates (`templates/*.tmpl`, `string.Template` syntax: `$code`, `$pkg`...) make a complete,
working authority: descriptor, settings, wire models, totals, conversion, client, error table,
printing, a minimal simulator of its own, a README, and its tests. Every piece is small and marked
where the real authority's rules go; the shared contract tests pass on it as written, so the
contributor starts from green and replaces the placeholders one rule at a time.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from string import Template

import fiscalgate.authorities as registry

TEMPLATES = Path(__file__).parent / "templates"
REGISTRY_MARKER = "    # `fiscalgate new-authority` adds its line above this one.\n"
# Where each template goes, relative to the new package (or, for tests/, to the tests folder).
PACKAGE_FILES = {
    "init.py.tmpl": "__init__.py",
    "descriptor.py.tmpl": "descriptor.py",
    "regime.py.tmpl": "regime.py",
    "settings.py.tmpl": "settings.py",
    "schemas.py.tmpl": "schemas.py",
    "totals.py.tmpl": "totals.py",
    "convert.py.tmpl": "convert.py",
    "client.py.tmpl": "client.py",
    "errors.py.tmpl": "errors.py",
    "printing.py.tmpl": "printing.py",
    "driver.py.tmpl": "driver.py",
    "README.md.tmpl": "README.md",
    "simulator_init.py.tmpl": "simulator/__init__.py",
    "simulator_state.py.tmpl": "simulator/state.py",
    "simulator_app.py.tmpl": "simulator/app.py",
    "simulator_cli.py.tmpl": "simulator/cli.py",
}
TEST_FILES = {"tests_init.py.tmpl": "__init__.py", "test_authority.py.tmpl": "test_$pkg.py"}


class ScaffoldError(ValueError):
    """The code, country or target folders do not allow a new authority."""


@dataclass(frozen=True)
class NewAuthority:
    code: str  # "sn-demo"
    country: str  # "SN"
    currency: str  # "XOF"

    @property
    def pkg(self) -> str:
        return self.code.replace("-", "_")

    @property
    def module(self) -> str:
        return self.code.split("-", 1)[1]

    @property
    def cls(self) -> str:
        return "".join(part.capitalize() for part in re.split(r"[^a-z0-9]+", self.module) if part)

    def substitutions(self) -> dict[str, str]:
        return {
            "code": self.code,
            "pkg": self.pkg,
            "module": self.module,
            "country": self.country,
            "country_lower": self.country.lower(),
            "currency": self.currency,
            "cls": self.cls,
            "upper": self.module.upper().replace("-", "_"),
        }


def check(code: str, country: str, currency: str) -> NewAuthority:
    code, country, currency = code.strip().lower(), country.strip().upper(), currency.strip().upper()
    if not re.fullmatch(r"[A-Z]{2}", country):
        raise ScaffoldError(f"--country must be an ISO 3166 alpha-2 code (SN, TG...), not {country!r}")
    if not re.fullmatch(r"[a-z]{2}-[a-z][a-z0-9]{1,30}", code):
        raise ScaffoldError(f"the code must be 'cc-name' in lower case (e.g. sn-demo), not {code!r}")
    if code[:2] != country.lower():
        raise ScaffoldError(f"the code {code!r} must start with its country ({country.lower()}-...)")
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise ScaffoldError(f"--currency must be an ISO 4217 code (XOF, XAF...), not {currency!r}")
    new = NewAuthority(code, country, currency)
    taken = {name for d in registry.descriptors() for name in d.names()}
    for name in (new.code, new.module):
        if name in taken:
            raise ScaffoldError(f"{name!r} already names a registered authority")
    return new


def render(name: str, values: dict[str, str]) -> str:
    return Template((TEMPLATES / name).read_text(encoding="utf-8")).substitute(values)


def generate(
    code: str, country: str, *, currency: str = "XOF", package_dir: Path, tests_dir: Path | None
) -> list[Path]:
    """Write the new authority's folder under `package_dir` (the `fiscalgate/authorities` folder),
    its tests under `tests_dir/<pkg>/`, and its registry line; returns the files written.

    Nothing is written unless everything can be: the targets must not exist yet."""
    new = check(code, country, currency)
    values = new.substitutions()
    target = package_dir / new.pkg
    registry_file = package_dir / "__init__.py"
    source = registry_file.read_text(encoding="utf-8")
    if REGISTRY_MARKER not in source:
        raise ScaffoldError(f"{registry_file} has lost its marker line {REGISTRY_MARKER.strip()!r}")
    line = f'    "fiscalgate.authorities.{new.pkg}.descriptor",\n'
    tests_target = None if tests_dir is None else tests_dir / new.pkg
    for path in (target, tests_target):
        if path is not None and path.exists():
            raise ScaffoldError(f"{path} already exists")
    files = {target / out: render(tmpl, values) for tmpl, out in PACKAGE_FILES.items()}
    if tests_target is not None:
        files |= {
            tests_target / Template(out).substitute(values): render(tmpl, values)
            for tmpl, out in TEST_FILES.items()
        }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    registry_file.write_text(source.replace(REGISTRY_MARKER, line + REGISTRY_MARKER), encoding="utf-8")
    tidy([path for path in files if path.suffix == ".py"])
    return [*files, registry_file]


def tidy(paths: list[Path]) -> bool:
    """Sort imports and format the generated files with the project's ruff (a dev dependency), so
    they pass `make lint` whatever the authority's name (import order depends on it). Without ruff,
    the files are left as rendered; returns whether ruff ran."""
    if not paths:
        return False
    names = [str(p) for p in paths]
    try:
        for args in (["check", "--fix", "--select", "I", "--quiet"], ["format", "--quiet"]):
            subprocess.run(
                [sys.executable, "-m", "ruff", *args, *names], check=True, capture_output=True, timeout=60
            )
    except (OSError, subprocess.SubprocessError):
        return False
    return True


def default_dirs() -> tuple[Path, Path | None]:
    """The package's authorities folder and, in a source checkout (`src/` layout), its tests."""
    package_dir = Path(registry.__file__).parent
    root = package_dir.parents[2]
    tests = root / "tests" / "authorities"
    return package_dir, tests if (root / "pyproject.toml").is_file() and tests.is_dir() else None
