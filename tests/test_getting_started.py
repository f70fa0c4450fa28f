"""A newcomer's first steps, as the README gives them: ``make lab`` serves the notebooks
with rtkit's kernel, ``make test`` and ``make notebooks`` touch only the project's
notebooks, rtkit's kernel installs into another Jupyter, and the offline first snippet
runs as written.

``make`` runs here with ``-o .venv/.ready`` and ``PY=`` this interpreter, so no
virtual environment is created or changed; every server is on 127.0.0.1, with a token,
and stopped within a bounded time.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import rtkit
from tests.conftest import wait_for
from tests.test_browser import free_port

ROOT = Path(__file__).resolve().parent.parent
MAKE = shutil.which("make")
needs_make = pytest.mark.skipif(MAKE is None, reason="needs GNU make")
LAB_START_TIMEOUT_S = 60

def readme_block(heading: str) -> str:
    """The first ```python block under ``heading`` in the README, as a user copies it."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index(f"\n{heading}\n"):]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


#: the README's offline first snippet, read from the README itself
OFFLINE_FIRST_SNIPPET = readme_block("## A first snippet, offline")


def outside_make(env: dict | None) -> dict:
    """``env`` (or ours) without what a make running these tests passes down to its
    children: a nested make would print 'Entering directory' and take the outer flags."""
    return {k: v for k, v in (os.environ if env is None else env).items()
            if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}


def make(*args: str, cwd: Path = ROOT, env: dict | None = None) -> list[str]:
    """The commands ``make -n`` would run (the venv taken as ready), one per line."""
    done = subprocess.run([MAKE, "--no-print-directory", "-n", "-o", ".venv/.ready", *args],
                          cwd=cwd, env=outside_make(env),
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def pytest_line(lines: list[str]) -> str:
    (line,) = [line for line in lines if "-m pytest" in line]
    return line


# --- make lab ------------------------------------------------------------------------------

def api(url: str, token: str, path: str, method: str = "GET"):
    request = urllib.request.Request(f"{url}{path}", method=method,
                                     headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        body = response.read()
        return json.loads(body) if body else None


@needs_make
def test_make_lab_serves_the_notebooks_with_rtkits_kernel_and_prints_its_url(tmp_path):
    pytest.importorskip("jupyterlab")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTERLAB_SETTINGS_DIR",
                 "JUPYTERLAB_WORKSPACES_DIR"):
        env[name] = str(tmp_path / name.lower())
    assert "--no-browser" in make("lab", env=env)[0]  # headless: no browser to open
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    printed = re.compile(rf"{re.escape(url)}/lab\?token=([0-9a-f]{{32,}})")
    log = tmp_path / "lab.log"
    with log.open("w") as out:
        lab = subprocess.Popen(
            [MAKE, "-o", ".venv/.ready", "lab", f"PY={sys.executable}",
             f"LAB_ARGS=--ServerApp.ip=127.0.0.1 --ServerApp.port={port} "
             "--ServerApp.port_retries=0 --ServerApp.allow_root=True --LabApp.news_url=None"],
            cwd=ROOT, env=outside_make(env), stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        deadline = time.monotonic() + LAB_START_TIMEOUT_S
        while not (found := printed.search(log.read_text())):  # the URL to open, as printed
            assert lab.poll() is None, f"make lab exited: {log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"no URL printed: {log.read_text()[-2000:]}"
            time.sleep(0.25)
        token = found.group(1)
        while True:
            try:
                api(url, token, "/api/status")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                assert time.monotonic() < deadline, f"no answer: {log.read_text()[-2000:]}"
                time.sleep(0.25)
        listed = {item["name"] for item in api(url, token, "/api/contents/")["content"]}
        assert "01_quickstart.ipynb" in listed  # it serves notebooks/
        specs = api(url, token, "/api/kernelspecs")
        kernel = specs["kernelspecs"][specs["default"]]["spec"]
        # the kernel the notebooks name is the venv's Python, the one rtkit is installed in
        assert specs["default"] == "python3"
        assert os.path.samefile(shutil.which(kernel["argv"][0]), sys.executable)
        api(url, token, "/api/shutdown", method="POST")
        lab.wait(20)
    finally:
        if lab.poll() is None:
            os.killpg(lab.pid, signal.SIGTERM)
            lab.wait(10)


# --- make test / make notebooks ------------------------------------------------------------

@needs_make
def test_make_test_and_make_notebooks_run_only_the_projects_notebooks(tmp_path):
    tracked = subprocess.run(["git", "ls-files", "notebooks/*.ipynb"], cwd=ROOT,
                             capture_output=True, text=True, timeout=30).stdout.split()
    assert "notebooks/01_quickstart.ipynb" in tracked
    assert pytest_line(make("test")).split()[-len(tracked) - 1:] == ["tests", *tracked]

    # a checkout without git (an unpacked archive) with a user's scratch notebooks in it
    shutil.copy(ROOT / "Makefile", tmp_path)
    (tmp_path / "notebooks").mkdir()
    for name in ("01_quickstart.ipynb", "02_analysis.ipynb", "Untitled.ipynb",
                 "01_quickstart-Copy1.ipynb", "scratch.ipynb"):
        (tmp_path / "notebooks" / name).write_text("{}")
    env = dict(os.environ, GIT_CEILING_DIRECTORIES=str(tmp_path.parent))
    project = ["notebooks/01_quickstart.ipynb", "notebooks/02_analysis.ipynb"]
    assert pytest_line(make("test", cwd=tmp_path, env=env)).split()[-3:] == ["tests", *project]
    rerun = " ".join(make("notebooks", cwd=tmp_path, env=env))
    assert rerun.split()[-2:] == project and "Untitled" not in rerun

    # with git: the notebooks it tracks, whatever else lies in notebooks/
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True, timeout=30)
    subprocess.run(["git", "add", "Makefile", "notebooks/02_analysis.ipynb"], cwd=tmp_path,
                   check=True, timeout=30)
    assert pytest_line(make("test", cwd=tmp_path, env=env)).split()[-2:] == [
        "tests", "notebooks/02_analysis.ipynb"]


# --- your own Jupyter ----------------------------------------------------------------------

def test_rtkits_kernel_installs_into_another_jupyter(tmp_path):
    """``python -m ipykernel install --user --name rtkit``, here into a prefix of its own."""
    subprocess.run([sys.executable, "-m", "ipykernel", "install", "--prefix", str(tmp_path),
                    "--name", "rtkit", "--display-name", "Python (rtkit)"],
                   check=True, capture_output=True, timeout=60)
    spec = json.loads((tmp_path / "share/jupyter/kernels/rtkit/kernel.json").read_text())
    assert spec["display_name"] == "Python (rtkit)"
    done = subprocess.run([*spec["argv"][:1], "-c", "import rtkit, rtkit.widgets"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_the_offline_first_snippet_runs_as_written(tmp_path):
    """In a fresh interpreter (``rtkit.sim`` with no import of its own), in an empty folder."""
    done = subprocess.run(
        [sys.executable, "-c", OFFLINE_FIRST_SNIPPET.replace(
            'rtkit.analysis.ohlcv(c.df, "1s")',
            'bars = rtkit.analysis.ohlcv(c.df, "1s")\n'
            'print(len(bars), int(bars["trades"].sum()), c.stats["stored"], c.status)')],
        cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True,
        text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    told, summary = done.stdout.splitlines()
    n_bars, in_bars, stored, status = summary.split()
    assert int(stored) > 0 and int(in_bars) == int(stored) and int(n_bars) >= 1
    assert status == "stopped"
    assert told.startswith(f"{int(stored):,} ticks stored in ")
    assert (tmp_path / told.split(" stored in ")[1]).exists()


# --- Run All on the quickstart, then Start ---------------------------------------------------

def test_after_run_all_on_the_quickstart_start_collects_again_into_its_database(no_thread_leak):
    """Every code cell of 01_quickstart in order (as Run All does, here without a browser),
    then the panel's Start: a fresh collector gets new trades from the simulator that is
    still there, into the database that is still there."""
    from rtkit import widgets

    notebook = json.loads((ROOT / "notebooks" / "01_quickstart.ipynb").read_text())
    namespace: dict = {}
    try:
        for cell in notebook["cells"]:
            if cell["cell_type"] == "code":
                exec("".join(cell["source"]), namespace)
        first, db = namespace["c"], namespace["db"]
        assert str(first.status) == "stopped" and db.exists()
        panel = widgets._open_panels["quickstart"]
        panel.start_button.click()
        again = panel.collector
        assert again is not first and again.running and again.db == db
        overlap = namespace["sim"].overlap  # what a new subscription re-sends first
        wait_for(lambda: again.stats["stored"] > overlap and str(again.status) == "live")
        panel.close(stop_collector=True)
        with again.store() as store:
            assert store.count() > first.stats["stored"]
    finally:
        rtkit.stop_all()
        if "sim" in namespace:
            namespace["sim"].stop()
        for panel in list(widgets._open_panels.values()):
            panel.close()
        if "db" in namespace:
            shutil.rmtree(namespace["db"].parent, ignore_errors=True)
