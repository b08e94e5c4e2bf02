"""Who may import or run whom: the tests depend on the development tools, never the other way.

deploy/ (the local system), docker-compose.yml and the Dockerfile run the development fakes
from devtools/, never anything of tests/; devtools/ is not a test helper either; services/
and shared/ reach neither; and tests/ use deploy.dev only through its public names (the
ones that start and stop infrastructure), so deploy.dev's modules can change freely.
"""

from __future__ import annotations

import ast
import importlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.test_compose import services

REPO_ROOT = Path(__file__).resolve().parents[2]
# `tests` as a module (tests.fakes.x) or a path (tests/fakes/x.py, ./tests); not test_x names.
TESTS_REFERENCE = re.compile(r"(?<![\w.-])(?:\./)?tests(?:[./]|$)")


def naming(package: str) -> re.Pattern[str]:
    """A whole string that is a module or path of `package`: an argv element such as
    `-m tests.fakes.registers`, or a path part; prose that mentions it is not."""
    return re.compile(rf"(?:\./)?{package}(?:[./][\w./-]*)?")


def python_files(*folders: str) -> list[Path]:
    found = [path for folder in folders for path in sorted((REPO_ROOT / folder).rglob("*.py"))]
    assert found, f"no Python files under {folders}"
    return found


def imported_modules(tree: ast.AST) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def references_to(package: str, path: Path) -> list[str]:
    """Imports of `package` and string literals naming it (`python -m package.x` argv)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = [m for m in imported_modules(tree) if m == package or m.startswith(f"{package}.")]
    found += [
        repr(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and naming(package).fullmatch(node.value.strip())
    ]
    where = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path.name
    return [f"{where}: {what}" for what in found]


def test_the_reference_check_sees_imports_and_module_names(tmp_path: Path) -> None:
    """The check below catches what deploy/ did before devtools/ existed (import the
    factories, run the fakes with `python -m tests.fakes...`), and no prose."""
    path = tmp_path / "probe.py"
    path.write_text(
        '"""Started by the tests; see tests/fakes/docstore.py."""\n'
        "from tests.factories import submitted\n"
        "import tests.corpus\n"
        'CMD = ["python", "-m", "tests.fakes.registers"]\n'
        'FAKES = ROOT / "tests" / "fakes"\n'
        'OTHER = ["test_x.py", "contests", "devtools.fakes.registers"]\n'
    )
    assert [line.split(": ", 1)[1] for line in references_to("tests", path)] == [
        "tests.factories",
        "tests.factories.submitted",
        "tests.corpus",
        "'tests.fakes.registers'",
        "'tests'",
    ]


@pytest.mark.parametrize(
    ("folders", "package"),
    [
        (("deploy", "devtools"), "tests"),
        (("services", "shared"), "tests"),
        (("services", "shared"), "devtools"),
        (("services", "shared"), "deploy"),
    ],
)
def test_nothing_imports_or_runs_a_package_it_must_not(
    folders: tuple[str, ...], package: str
) -> None:
    found = [ref for path in python_files(*folders) for ref in references_to(package, path)]
    assert found == [], f"{'/, '.join(folders)}/ must not use {package}:\n" + "\n".join(found)


@pytest.mark.parametrize("name", ["docker-compose.yml", "Dockerfile"])
def test_compose_and_the_image_never_use_tests(name: str) -> None:
    """Comments may point to the tests that check a file; instructions may not use them."""
    lines = (REPO_ROOT / name).read_text(encoding="utf-8").splitlines()
    found = [
        f"{name}:{number}: {line.strip()}"
        for number, line in enumerate(lines, 1)
        if not line.lstrip().startswith("#") and TESTS_REFERENCE.search(line)
    ]
    assert found == []


def test_compose_runs_the_development_fakes_from_devtools() -> None:
    """As Compose itself reads the file, with the dev profile on: every command, entry
    point and healthcheck."""
    dev = services("dev")
    argv = {
        name: [
            *(service.get("entrypoint") or []),
            *(service.get("command") or []),
            *service.get("healthcheck", {}).get("test", []),
        ]
        for name, service in dev.items()
    }
    assert {name: a for name, a in argv.items() if any(TESTS_REFERENCE.search(w) for w in a)} == {}
    fakes = {name: a[2] for name, a in argv.items() if a[:2] == ["python", "-m"]}
    assert {name: module for name, module in fakes.items() if module.startswith("devtools.")} == {
        "fake-registers": "devtools.fakes.registers",
        "docstore": "devtools.fakes.docstore",
        "mail-sink": "devtools.fakes.mail_sink",
    }


def test_tests_use_deploy_dev_only_through_its_public_names() -> None:
    """deploy.dev's __all__ is what starts and stops infrastructure for the tests and the
    benchmarks; its own unit tests (test_dev_*.py) may reach into its modules."""
    public = set(importlib.import_module("deploy.dev").__all__)
    found = []
    for path in python_files("tests"):
        if path.name.startswith("test_dev_"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("deploy"):
                names = {alias.name for alias in node.names}
                if node.module != "deploy.dev" or not names <= public:
                    found.append(f"{path.relative_to(REPO_ROOT)}: from {node.module} {names}")
            elif isinstance(node, ast.Import):
                found += [
                    f"{path.relative_to(REPO_ROOT)}: import {alias.name}"
                    for alias in node.names
                    if alias.name.startswith("deploy")
                ]
    assert found == []
