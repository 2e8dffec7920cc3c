"""Every dependency declared in pyproject.toml is used: a runtime one is imported somewhere under
src/, a dev one under tests/ (or is a tool the Makefile runs). A dependency nothing imports is
either dead weight or needed indirectly; the indirect ones are listed below, each with why."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Needed although no module imports them by name.
INDIRECT_RUNTIME = {
    # The PostgreSQL driver: SQLAlchemy loads it from the URL (`postgresql+psycopg://`, db.py).
    "psycopg": "SQLAlchemy's PostgreSQL dialect",
    # Starlette's `Request.form()` parses the console's forms with it (console/routes.py, web.py).
    "python-multipart": "Starlette form parsing (the console)",
    # httpx's ASGITransport (the in-process simulators) detects the async library with it.
    "sniffio": "httpx ASGITransport",
}
TOOLS_DEV = {
    "pytest": "runs the suite",  # imported too, but it is first of all the runner
    "ruff": "make lint",
    "mypy": "make typecheck",
}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(spec: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", spec.strip())
    assert match, spec
    return _normal(match.group(0))


def _imported_top_levels(folder: Path) -> set[str]:
    found: set[str] = set()
    for path in folder.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found


def _modules_by_distribution() -> dict[str, set[str]]:
    by_dist: dict[str, set[str]] = {}
    for module, dists in importlib.metadata.packages_distributions().items():
        for dist in dists:
            by_dist.setdefault(_normal(dist), set()).add(module)
    return by_dist


def _project() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]  # type: ignore[no-any-return]


def _unused(requirements: list[str], imported: set[str], allowed: dict[str, str]) -> list[str]:
    by_dist = _modules_by_distribution()
    unused = []
    for spec in requirements:
        name = _requirement_name(spec)
        if name in allowed:
            continue
        modules = by_dist.get(name)
        assert modules, f"{name} is declared but not installed: run `make setup`"
        if not modules & imported:
            unused.append(f"{name} (provides {', '.join(sorted(modules))})")
    return unused


def test_every_runtime_dependency_is_imported_by_the_package() -> None:
    project = _project()
    requirements = project["dependencies"]
    assert isinstance(requirements, list)
    unused = _unused(requirements, _imported_top_levels(ROOT / "src"), INDIRECT_RUNTIME)
    assert not unused, (
        f"declared in pyproject.toml but imported nowhere under src/: {unused}; remove them, or "
        "list them in INDIRECT_RUNTIME with the reason they are needed"
    )


def test_every_dev_dependency_is_imported_by_the_tests_or_is_a_tool() -> None:
    optional = _project()["optional-dependencies"]
    assert isinstance(optional, dict)
    unused = _unused(optional["dev"], _imported_top_levels(ROOT / "tests"), TOOLS_DEV)
    assert not unused, f"dev dependencies nothing under tests/ imports: {unused}"


def test_the_allow_lists_name_only_declared_dependencies() -> None:
    project = _project()
    declared = {_requirement_name(s) for s in project["dependencies"]}  # type: ignore[union-attr]
    dev = {_requirement_name(s) for s in project["optional-dependencies"]["dev"]}  # type: ignore[index]
    assert set(INDIRECT_RUNTIME) <= declared, set(INDIRECT_RUNTIME) - declared
    assert set(TOOLS_DEV) <= dev, set(TOOLS_DEV) - dev


def test_the_check_catches_an_unused_dependency() -> None:
    # The check itself: a declared distribution whose modules are never imported is reported.
    assert _unused(["click>=8"], {"httpx"}, {}) == ["click (provides click)"]
    assert _unused(["click>=8"], {"click"}, {}) == []
