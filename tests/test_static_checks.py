"""Static checks that run with the suite: bandit over app/, and the import rules between the layers."""
import ast
import subprocess  # nosec B404 - runs the project's own checker
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_bandit_finds_nothing_unreviewed():
    """Every finding is either fixed or marked `# nosec <id> - <reason>` after review."""
    result = subprocess.run(  # nosec B603 - fixed argv
        [sys.executable, "-m", "bandit", "-q", "-r", str(ROOT / "app"), "-f", "txt"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert ">> Issue" not in result.stdout, result.stdout


def _imported_modules(package: Path) -> dict[str, set[str]]:
    """Every module each file of `package` imports, at the top or inside a function."""
    found: dict[str, set[str]] = {}
    for path in package.rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
        found[str(path.relative_to(ROOT))] = names
    return found


@pytest.mark.parametrize("door, other", [("web", "api"), ("api", "web")])
def test_pages_and_api_do_not_import_each_other(door, other):
    """The two doors share pieces through a floor below them (app.presenters, app.http_problems)."""
    crossing = {path: sorted(n for n in names if n == f"app.{other}" or n.startswith(f"app.{other}."))
                for path, names in _imported_modules(ROOT / "app" / door).items()}
    assert not {path: names for path, names in crossing.items() if names}


def test_the_application_does_not_import_development_tools():
    """localstripe and the other tools live in tools/, outside the package production runs."""
    importing = {path: sorted(n for n in names if n == "tools" or n.startswith(("tools.", "app.devtools")))
                 for path, names in _imported_modules(ROOT / "app").items()}
    assert not {path: names for path, names in importing.items() if names}
    assert not (ROOT / "app" / "devtools").exists()
