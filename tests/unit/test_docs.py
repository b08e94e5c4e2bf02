"""The README and docs/ say what the code is: every link resolves inside the repository,
every setting is documented (and nothing documented is gone), and the tables of services
and modules list exactly what exists."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

import services
import shared

REPO_ROOT = Path(__file__).resolve().parents[2]
README = REPO_ROOT / "README.md"
DOCS = sorted((REPO_ROOT / "docs").glob("*.md"))
LINK = re.compile(r"\]\(([^)\s]+)\)")


def table_column(text: str, header: str) -> list[str]:
    """The first column of the Markdown table whose header row starts with `header`."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {header} |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(line.split("|")[1].strip().strip("`"))
    return rows


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda p: p.name)
def test_every_link_resolves_to_a_file_in_the_repository(page: Path) -> None:
    broken = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path = (page.parent / target.split("#")[0]).resolve()
        if not path.is_relative_to(REPO_ROOT) or not path.exists():
            broken.append(target)
    assert broken == []


def test_the_readme_points_to_the_contract_in_the_repository() -> None:
    links = LINK.findall(README.read_text(encoding="utf-8"))
    assert "docs/contract.md" in links
    assert "docs/asyncapi.json" in links


def settings_classes() -> list[type[BaseSettings]]:
    """Every settings class of shared/ and services/ (Settings may be split per service)."""
    for package in (shared, services):
        for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if module.name.rsplit(".", 1)[-1] in ("settings", "config"):
                importlib.import_module(module.name)
    found: list[type[BaseSettings]] = []
    todo = list(BaseSettings.__subclasses__())
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if cls.__module__.startswith(("shared.", "services.")):
            found.append(cls)
    assert found, "no settings class found"
    return found


def test_every_setting_is_documented_and_every_documented_setting_exists() -> None:
    variables = {
        f"{cls.model_config.get('env_prefix', '')}{name}".upper()
        for cls in settings_classes()
        for name in cls.model_fields
    }
    text = (REPO_ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    documented = {
        name
        for row in table_column(text, "variable")
        for name in re.findall(r"KORTFLYT_[A-Z0-9_]+", row)
    }
    assert sorted(variables - documented) == [], "settings missing from docs/settings.md"
    assert sorted(documented - variables) == [], "docs/settings.md lists settings that are gone"


def test_the_readme_lists_every_service_that_runs() -> None:
    running = sorted(
        path.parent.name
        for path in (REPO_ROOT / "services").glob("*/__main__.py")
        if path.parent.name != "__pycache__"
    )
    assert sorted(table_column(README.read_text(encoding="utf-8"), "service")) == running


@pytest.mark.parametrize(
    ("page", "folder", "header", "prefix"),
    [
        ("operations.md", "deploy/dev", "module of `deploy/dev/`", ""),
        ("operations.md", "devtools", "module", "devtools/"),
        ("layout.md", "shared", "module of `shared/`", ""),
        ("layout.md", "services", "module of `services/`", ""),
    ],
)
def test_the_module_tables_list_every_module(
    page: str, folder: str, header: str, prefix: str
) -> None:
    text = (REPO_ROOT / "docs" / page).read_text(encoding="utf-8")
    modules = sorted(
        str(path.relative_to(REPO_ROOT / folder))
        for path in (REPO_ROOT / folder).rglob("*.py")
        if path.name != "__init__.py" or folder == "deploy/dev"
    )
    listed = sorted(row.removeprefix(prefix) for row in table_column(text, header))
    assert listed == modules
