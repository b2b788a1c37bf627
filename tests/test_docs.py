"""The documentation site (docs/, mkdocs.yml) builds with --strict (a broken link or anchor, or a page left out of
the nav, fails), reads offline (no font, script or style from another host), and the README stays short, with
links that resolve and commands that work on a plain install."""

import os
import re
import subprocess
import sys
import xml.dom.minidom
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README_MAX_LINES = 120


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("docs") / "site"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(ROOT / "mkdocs.yml"),
            "--site-dir",
            str(out),
        ],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return out


class _Resources(HTMLParser):
    """The URLs a page loads by itself (scripts, styles, fonts, images, frames), not the links a reader follows."""

    LOADING = {
        ("script", "src"),
        ("img", "src"),
        ("iframe", "src"),
        ("source", "src"),
        ("embed", "src"),
        ("object", "data"),
    }

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        for name, value in attrs:
            if (tag, name) in self.LOADING and value:
                self.urls.append(value)
        if tag == "link" and values.get("href") and values.get("rel") not in {"next", "prev", "canonical"}:
            self.urls.append(values["href"])


def _remote(url: str) -> bool:
    return bool(re.match(r"^(https?:)?//", url.strip(), re.IGNORECASE))


def test_the_site_builds_strict_and_loads_nothing_from_elsewhere(site):
    pages = sorted(site.rglob("*.html"))
    assert {"index.html", "concepts.html", "protocol.html", "troubleshooting.html"} <= {p.name for p in pages}
    for page in pages:
        text = page.read_text()
        parser = _Resources()
        parser.feed(text)
        remote = [url for url in parser.urls if _remote(url)]
        assert not remote, f"{page.relative_to(site)} loads {remote}"
        assert "fonts.googleapis.com" not in text and "fonts.gstatic.com" not in text, page
    for stylesheet in site.rglob("*.css"):
        text = stylesheet.read_text()
        urls = re.findall(r"""url\(\s*['"]?([^'")]+)""", text) + re.findall(r"""@import\s+['"]([^'"]+)""", text)
        remote = [url for url in urls if not url.startswith("data:") and _remote(url)]
        assert not remote, f"{stylesheet.relative_to(site)} loads {remote}"


def test_the_diagrams_are_well_formed_svg():
    drawings = sorted((ROOT / "docs" / "img").glob("*.svg"))
    assert drawings
    for drawing in drawings:
        root = xml.dom.minidom.parse(str(drawing)).documentElement
        assert root.tagName == "svg", drawing
        assert root.getElementsByTagName("title"), f"{drawing.name}: a <title> for screen readers"


def test_the_readme_is_short_and_its_links_resolve():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= README_MAX_LINES
    targets = re.findall(r"\]\(([^)\s]+)\)", readme)
    local = [t.split("#")[0] for t in targets if not _remote(t) and not t.startswith(("mailto:", "#"))]
    assert local, "the README links into docs/"
    missing = [t for t in local if not (ROOT / t).exists()]
    assert not missing, missing


def test_commands_are_written_for_a_plain_install():
    """`python manage.py …` fails on a plain install: the docs say `.venv/bin/python manage.py …`, or run it
    inside the compose stack (`docker compose exec web python manage.py …`)."""
    wrong = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for match in re.finditer(r"(\S*)python3? manage\.py", line):
                before = line[: match.start()]
                if (
                    match.group(1).endswith(".venv/bin/")
                    or "docker compose exec" in before
                    or (before + match.group(1)).endswith("bare `")
                ):
                    continue
                wrong.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not wrong, "\n".join(wrong)
