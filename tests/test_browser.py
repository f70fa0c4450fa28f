"""01_quickstart.ipynb in a real browser: JupyterLab on 127.0.0.1, Debian's headless
Chromium driven by Playwright. Runs the notebook up to its panel, then checks what a
person would: the panel renders, the tick counter grows, the charts' labels are legible
(no repeated times, a few whole-number prices), Stop stops it without moving the
buttons, Start starts a new run and says its counters began again, and after a kernel
restart the panel no longer claims to be live.

Needs Debian's ``chromium`` (``.ci/run`` installs it); Playwright's own browser
download is not used. Outside CI a machine without Chromium skips this test.
A screenshot lands in ``test-output/browser/``.
"""

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "01_quickstart.ipynb"
OUTPUT = ROOT / "test-output" / "browser"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
SERVER_START_TIMEOUT_S = 60
UI_TIMEOUT_MS = 30_000

pytestmark = pytest.mark.timeout(150)


def require(available: bool, what: str) -> None:
    """Skip on a developer's machine without ``what``; fail in CI, which must have it."""
    if not available:
        message = f"the browser test needs {what}"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; .ci/run should have installed it")
        pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def code_cells_through_panel() -> list[int]:
    """Indices of the code cells, from the top through the one showing the panel."""
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    panel = next(i for i, cell in enumerate(cells) if "c.panel()" in "".join(cell["source"]))
    return [i for i, cell in enumerate(cells[: panel + 1]) if cell["cell_type"] == "code"]


#: JupyterLab settings for the test: every cell in the page (not only those scrolled into
#: view), and no toast asking about news
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false", "checkForUpdates": False},
}


class JupyterLab:
    """A JupyterLab server on 127.0.0.1 with a random token, over a copy of the notebook
    without its stored outputs, with its own config, settings and temp folders so neither
    side touches the repo."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.root = workdir / "lab"
        self.root.mkdir()
        notebook = json.loads(NOTEBOOK.read_text())
        for cell in notebook["cells"]:
            if cell["cell_type"] == "code":
                cell["outputs"], cell["execution_count"] = [], None
        (self.root / NOTEBOOK.name).write_text(json.dumps(notebook))
        env = dict(os.environ)
        for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTERLAB_SETTINGS_DIR",
                     "JUPYTERLAB_WORKSPACES_DIR", "TMPDIR"):
            folder = workdir / name.lower()
            folder.mkdir()
            env[name] = str(folder)
        for name, settings in LAB_SETTINGS.items():
            path = Path(env["JUPYTERLAB_SETTINGS_DIR"]) / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(settings))
        self.log = workdir / "jupyterlab.log"
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1",
                 f"--port={self.port}", "--ServerApp.port_retries=0",
                 f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}",
                 "--ServerApp.allow_root=True", "--LabApp.news_url=None",
                 "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.root)
        self.url = f"http://127.0.0.1:{self.port}"
        self._wait_until_up()

    def api(self, path: str, method: str = "GET"):
        request = urllib.request.Request(f"{self.url}{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status

    def api_json(self, path: str, method: str = "GET"):
        request = urllib.request.Request(f"{self.url}{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"JupyterLab exited: {self.log.read_text()[-2000:]}")
            try:
                if self.api("/api/status") == 200:
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.25)
        pytest.fail(f"JupyterLab did not answer within {SERVER_START_TIMEOUT_S}s: "
                    f"{self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        """Shut the server down through its API (which shuts its kernels down too)."""
        try:
            self.api("/api/shutdown", method="POST")
            self.process.wait(15)
        except (urllib.error.URLError, ConnectionError, subprocess.TimeoutExpired):
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


@pytest.fixture
def lab(tmp_path):
    require(CHROMIUM.exists(), f"Debian's chromium at {CHROMIUM} (apt-get install -y chromium)")
    pytest.importorskip("jupyterlab")
    server = JupyterLab(tmp_path)
    yield server
    server.stop()


def counter(page, name: str) -> int:
    return int(page.locator(f".rtkit-{name}").inner_text().replace(",", "") or 0)


def axis_labels(chart) -> list[list[str]]:
    """The tick labels of each axis of a bqplot chart, as drawn (x axis first)."""
    return chart.evaluate(
        "fig => Array.from(fig.querySelectorAll('g.axis')).map("
        "a => Array.from(a.querySelectorAll('g.tick text')).map(t => t.textContent))")


def button_offsets(page, panel) -> list[tuple[float, float]]:
    """Where Start and Stop sit within the panel (the page may have scrolled)."""
    origin = panel.bounding_box()
    return [(box["x"] - origin["x"], box["y"] - origin["y"])
            for box in (page.locator(f"button.rtkit-{name}").bounding_box()
                        for name in ("start", "stop"))]


def check_chart_labels(panel) -> None:
    """No time label twice; a few price labels; whole numbers for BTC's 65,000."""
    for index in range(2):
        times, prices = axis_labels(panel.locator(".rtkit-chart").nth(index))
        assert len(times) >= 2 and len(set(times)) == len(times), times
        assert 2 <= len(prices) <= 5 and len(set(prices)) == len(prices), prices
        if index == 0:  # BTC-USDT
            assert all("." not in p for p in prices), prices


def test_quickstart_panel_renders_counts_and_stops_in_chromium(lab, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    expect = sync_api.expect
    expect.set_options(timeout=UI_TIMEOUT_MS)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM), headless=True,
            args=CHROMIUM_FLAGS, viewport={"width": 1400, "height": 1100})
        page = browser.new_page()
        try:
            page.goto(f"{lab.url}/lab/tree/{NOTEBOOK.name}?token={lab.token}")
            kernel = page.get_by_title(f"Change kernel for {NOTEBOOK.name}")  # status bar
            expect(kernel).to_have_text(re.compile(r"^Python 3.*\| Idle$"), timeout=60_000)

            cells = page.locator(".jp-Notebook .jp-Cell")
            for count, index in enumerate(code_cells_through_panel(), start=1):
                prompt = cells.nth(index).locator(".jp-InputPrompt")  # as a person would:
                prompt.click()  # select the cell, Shift+Enter, wait for its number
                page.keyboard.press("Shift+Enter")
                expect(prompt).to_have_text(f"[{count}]:")
            panel = page.locator(".rtkit-panel")
            expect(panel).to_be_visible()
            expect(panel.locator(".rtkit-state")).to_have_text("live")
            expect(panel.locator(".bqplot.figure")).to_have_count(2)  # BTC-USDT, ETH-USDT
            expect(panel.locator(".rtkit-table table")).to_be_visible()

            before = counter(page, "ticks")
            deadline = time.monotonic() + 15
            while counter(page, "ticks") <= before and time.monotonic() < deadline:
                page.wait_for_timeout(200)
            grown = counter(page, "ticks")
            assert grown > before, f"the tick counter stayed at {before}"
            expect(page.locator("button.rtkit-start")).to_be_disabled()
            check_chart_labels(panel)
            expect(panel.locator(".rtkit-stale-note")).to_have_css("opacity", "0")
            buttons_live = button_offsets(page, panel)
            panel.screenshot(path=str(OUTPUT / "01_quickstart-live.png"))

            page.locator("button.rtkit-stop").click()
            expect(panel.locator(".rtkit-state")).to_have_text("stopped")
            expect(page.locator("button.rtkit-stop")).to_be_disabled()
            expect(page.locator("button.rtkit-start")).to_be_enabled()
            stopped_at = counter(page, "ticks")
            page.wait_for_timeout(2_500)  # over two refreshes: a running collector would show
            assert counter(page, "ticks") == stopped_at
            # another status text, the buttons where they were
            assert button_offsets(page, panel) == buttons_live
            page.screenshot(path=str(OUTPUT / "01_quickstart-stopped.png"), full_page=True)

            page.locator("button.rtkit-start").click()  # a new run: its counters begin at 0
            expect(panel.locator(".rtkit-state")).to_have_text("live")
            expect(panel.locator(".rtkit-run")).to_contain_text("started again from 0")

            # a kernel restart ends the refreshes: the browser marks the view frozen itself
            (session,) = lab.api_json("/api/sessions")
            lab.api_json(f"/api/kernels/{session['kernel']['id']}/restart", method="POST")
            expect(panel.locator(".rtkit-stale-note")).to_have_css("opacity", "1",
                                                                   timeout=20_000)
            expect(panel.locator(".rtkit-state")).to_have_css(
                "text-decoration-line", "line-through")
            panel.screenshot(path=str(OUTPUT / "01_quickstart-after-restart.png"))
        except BaseException:
            page.screenshot(path=str(OUTPUT / "01_quickstart-failed.png"), full_page=True)
            raise
        finally:
            browser.close()
    assert time.monotonic() - started < 120
