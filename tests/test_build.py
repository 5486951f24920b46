"""The build: `make install` compiles the catalogues (and says so when it cannot); the app it built speaks English."""
from __future__ import annotations

import os
import re
import shutil
import subprocess  # nosec B404 - runs the project's own Makefile and app
import urllib.request

import pytest
from babel.messages.mofile import read_mo

from tests.helpers import ROOT, stale_catalogues
from tests.live_server import GunicornServer

HOME_EN = "Beds in Visby during Almedalen Week"


@pytest.fixture
def project_copy(tmp_path):
    """The Makefile and the catalogues in a scratch directory, using the installed virtualenv."""
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    shutil.copy(ROOT / "requirements.txt", tmp_path / "requirements.txt")
    os.utime(tmp_path / "requirements.txt", (0, 0))  # older than the install stamp: no reinstall
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    for po in (ROOT / "app" / "translations").glob("*/LC_MESSAGES/messages.po"):
        target = tmp_path / po.relative_to(ROOT)
        target.parent.mkdir(parents=True)
        shutil.copy(po, target)
    return tmp_path


def make(directory, *targets):
    return subprocess.run(["make", "-s", "-C", str(directory), *targets],  # nosec B603 B607
                          capture_output=True, text=True, timeout=300)


def test_make_translations_writes_each_catalogue(project_copy):
    assert (ROOT / ".venv" / ".installed").exists(), "run the suite through `make test` (it runs `make install` first)"
    result = make(project_copy, "translations")
    assert result.returncode == 0, result.stderr
    mo = project_copy / "app" / "translations" / "en" / "LC_MESSAGES" / "messages.mo"
    assert mo.exists(), f"`make translations` wrote no .mo: {result.stdout} {result.stderr}"
    with mo.open("rb") as compiled:
        assert any(HOME_EN in str(message.string) for message in read_mo(compiled))
    assert stale_catalogues(project_copy / "app" / "translations") == []


def test_make_translations_rebuilds_when_a_po_changes_and_fails_loudly(project_copy):
    assert (ROOT / ".venv" / ".installed").exists(), "run the suite through `make test` (it runs `make install` first)"
    assert make(project_copy, "translations").returncode == 0
    po = project_copy / "app" / "translations" / "en" / "LC_MESSAGES" / "messages.po"
    mo = po.with_suffix(".mo")
    os.utime(mo, (1, 1))  # as if the .po had been edited after the last build
    assert stale_catalogues(project_copy / "app" / "translations")
    assert make(project_copy, "translations").returncode == 0
    assert mo.stat().st_mtime >= po.stat().st_mtime
    po.write_bytes(po.read_bytes() + b'\nmsgid "\xff"\nmsgstr "x"\n')  # not UTF-8: pybabel cannot read it
    broken = make(project_copy, "translations")
    assert broken.returncode != 0, "a catalogue that does not compile must fail the build"
    assert "Error" in broken.stderr  # and says why (nothing hides pybabel's message)


def test_stale_or_missing_catalogue_is_named(tmp_path):
    po = tmp_path / "en" / "LC_MESSAGES" / "messages.po"
    po.parent.mkdir(parents=True)
    po.write_text('msgid ""\nmsgstr ""\n', "utf-8")
    assert [p.endswith("is missing") for p in stale_catalogues(tmp_path)] == [True]
    po.with_suffix(".mo").write_bytes(b"")
    os.utime(po.with_suffix(".mo"), (1, 1))
    assert [p.endswith("is older than its .po") for p in stale_catalogues(tmp_path)] == [True]


def test_the_running_app_speaks_english(sqlite_template, tmp_path):
    """As `make run` serves it (wsgi:app from the project directory and its compiled catalogues)."""
    database = tmp_path / "run.db"
    shutil.copyfile(sqlite_template, database)
    with GunicornServer(f"sqlite:///{database}", workers=1) as server:
        with urllib.request.urlopen(server.base_url + "/?lang=en", timeout=30) as response:  # nosec B310
            page = response.read().decode("utf-8")
    assert re.search(r'<html lang="en">', page)
    assert HOME_EN in page and "Bäddar i Visby under Almedalsveckan" not in page
