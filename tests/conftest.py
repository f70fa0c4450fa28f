"""Shared test helpers: polling instead of sleeping, and a thread-leak guard."""

from __future__ import annotations

import signal
import ssl
import subprocess
import threading
import time

import pytest

if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    # started in the background by a shell without job control (``make test &``), which
    # ignores Ctrl-C: the tests of Ctrl-C, and the children they interrupt, need it back
    signal.signal(signal.SIGINT, signal.default_int_handler)


def wait_for(predicate, timeout_s: float = 10.0, interval_s: float = 0.01):
    """Poll ``predicate`` until it is truthy; fail the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout_s}s: {predicate}")
        time.sleep(interval_s)


def rtkit_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("rtkit-") and t.is_alive()]


def peak_rss_kib() -> int:
    """This process's own peak RSS in KiB, for a child process that proves a memory bound.

    Not ``getrusage(RUSAGE_SELF).ru_maxrss``: Linux carries the high-water mark across
    ``exec``, so a child of a pytest process holding 500 MB starts at 500 MB, and any
    growth below that never shows (a bound such a child checks passes whatever happens).
    ``VmHWM`` is the peak of the child's own memory."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    import resource  # no /proc: the best there is

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


@pytest.fixture
def no_thread_leak():
    """Fails the test if a collector or simulator thread outlives it."""
    before = set(rtkit_threads())
    yield
    deadline = time.monotonic() + 3.0
    while set(rtkit_threads()) - before and time.monotonic() < deadline:
        time.sleep(0.02)
    leaked = set(rtkit_threads()) - before
    if leaked:  # reported, then stopped: one failing test must not fail the next ones
        import rtkit

        rtkit.stop_all()
    assert not leaked, f"threads left behind: {[t.name for t in leaked]}"


@pytest.fixture
def db(tmp_path):
    return tmp_path / "ticks.sqlite"


@pytest.fixture
def tls_server_context(tmp_path) -> tuple[ssl.SSLContext, str]:
    """A server TLS context with a fresh self-signed certificate for 127.0.0.1."""
    pem = tmp_path / "cert.pem"
    try:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
                        "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", str(pem), "-out", str(pem)],
                       check=True, capture_output=True, timeout=30)
    except (FileNotFoundError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot make a self-signed certificate with openssl: {exc}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pem)
    return context, str(pem)


@pytest.fixture
def held_child(tmp_path, monkeypatch):
    """Writer processes that wait, before their imports, until the file this returns
    exists: a child that is slow to start, released when the test says so."""
    from rtkit.runtime import writer_child

    release = tmp_path / "release"
    monkeypatch.setattr(writer_child, "_CHILD_CODE", (
        f"import os, time\nwhile not os.path.exists({str(release)!r}): time.sleep(0.01)\n"
        + writer_child._CHILD_CODE))
    return release
