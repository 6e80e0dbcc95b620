"""The live dashboard at `/`, rendered by a real headless browser (Debian's chromium)."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import httpx

from tests.conftest import REPO, ForagerProcess
from tests.png import read_png

WIDTH, HEIGHT = 1400, 900
SCREENSHOT = REPO / "test-artifacts" / "dashboard.png"
GREEN = (0x3F, 0xB9, 0x50)  # the ALIVE / HEALTHY badges
BLUE = (0x58, 0xA6, 0xFF)  # the chart lines


def chromium(*args: str) -> str:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser, "chromium is needed for this test (make setup installs Debian's chromium)"
    done = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--window-size={WIDTH},{HEIGHT}",
            "--virtual-time-budget=5000",
            *args,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class Page(HTMLParser):
    """Text by element id, and the chart polylines' point counts."""

    def __init__(self) -> None:
        super().__init__()
        self.text: dict[str, str] = {}
        self.points: dict[str, int] = {}
        self.rows: dict[str, int] = {}
        self._stack: list[str | None] = []
        self._svg: str | None = None
        self._tbody: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        ident = found.get("id")
        if tag == "svg":
            self._svg = ident
        if tag == "tbody":
            self._tbody = ident
        if tag == "tr" and self._tbody:
            self.rows[self._tbody] = self.rows.get(self._tbody, 0) + 1
        if tag == "polyline" and self._svg:
            self.points[self._svg] = len((found.get("points") or "").split())
        if tag not in ("meta", "link", "br", "input", "line", "polyline"):
            self._stack.append(ident)
            if ident:
                self.text.setdefault(ident, "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._svg = None
        if tag == "tbody":
            self._tbody = None
        if tag not in ("meta", "link", "br", "input", "line", "polyline") and self._stack:
            self._stack.pop()

    def handle_data(self, data: str) -> None:
        for ident in self._stack:
            if ident:
                self.text[ident] += data


def test_dashboard_shows_the_agent_live_in_a_real_browser(
    tmp_path: Path, forager: list[ForagerProcess]
):
    """The page, its script and its charts render from the agent's own endpoints only."""
    agent = ForagerProcess(tmp_path / "data", "--interval", "0.3")
    forager.append(agent)
    agent.wait_event("tick_finished", tick=4)
    page = httpx.get(agent.url + "/", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert not re.search(r"(src|href)=\"(https?:)?//", page.text)  # nothing from elsewhere
    assert httpx.get(agent.url + "/dashboard/app.js", timeout=10).status_code == 200
    assert httpx.get(agent.url + "/dashboard/../api.py", timeout=10).status_code == 404

    dom = Page()
    dom.feed(chromium("--dump-dom", agent.url + "/"))
    state = agent.get("/state").json()
    assert dom.text["agent"] == state["agent_id"]
    assert dom.text["life"] == "ALIVE" and dom.text["health"] == "HEALTHY"
    assert state["model"] in dom.text["identity"]
    assert float(dom.text["net-worth"].replace(",", "")) > 0
    assert dom.points["chart-net-worth"] >= 5 and dom.points["chart-price"] >= 5
    assert dom.rows["ticks"] >= 5 and dom.rows["actions"] >= 1
    assert dom.text["updated"].startswith("updated ")

    SCREENSHOT.parent.mkdir(exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    chromium(f"--screenshot={SCREENSHOT}", agent.url + "/")
    width, height, rows = read_png(SCREENSHOT)
    assert (width, height) == (WIDTH, HEIGHT)
    colours = {row[x : x + 3] for row in rows for x in range(0, width * 4, 4)}
    assert len(colours) > 20  # not a blank page
    near = [c for c in colours if all(abs(a - b) < 12 for a, b in zip(c, GREEN, strict=True))]
    lines = [c for c in colours if all(abs(a - b) < 12 for a, b in zip(c, BLUE, strict=True))]
    assert near and lines  # the green badges and the blue chart lines were painted
    assert agent.terminate() == 0
