"""Helpers of the API tests (links of responses, walking pages, a real server process)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


def next_link(doc: dict) -> str | None:
    """The href of the 'next' link of a response, relative to the test server."""
    for link in doc.get("links", []):
        if link["rel"] == "next":
            return link["href"].replace("http://testserver", "")
    return None


def link(doc: dict, rel: str) -> str | None:
    for lk in doc.get("links", []):
        if lk["rel"] == rel:
            return lk["href"].replace("http://testserver", "")
    return None


def walk(client, url: str, max_pages: int = 10_000) -> tuple[list, list[dict]]:
    """Follow 'next' links from ``url``; return the feature ids and the pages."""
    ids, pages = [], []
    while url and len(pages) < max_pages:
        r = client.get(url)
        assert r.status_code == 200, r.text
        doc = r.json()
        pages.append(doc)
        ids += [f["id"] for f in doc["features"]]
        url = next_link(doc)
    return ids, pages


class GisServer:
    """``gis serve`` as a real process on a free port, its output in a log file.

    Parameters
    ----------
    env : dict
        Environment variables on top of this process's (``DATABASE_URL``, ``GIS_DATA_DIR``...).
    log : pathlib.Path
        Where the server's output goes.
    args : sequence of str
        More arguments of ``gis serve`` (``--workers 2``, ``--no-access-log``...).
    ready : str
        The path that answers 200 once the server is up.
    own_group : bool
        Run it in a process group of its own, so :meth:`kill` can take its workers too.

    Use it as a context manager (stopped with SIGTERM on exit) or call :meth:`stop`.
    """

    def __init__(self, env: dict, log, args=(), ready: str = "/", timeout: float = 60,
                 own_group: bool = False, drop_pg_env: bool = False) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = Path(log)
        self.own_group = own_group
        base_env = {k: v for k, v in os.environ.items() if not (drop_pg_env and k.startswith("PG"))}
        gis = str(Path(sys.executable).parent / "gis")
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [gis, "serve", "--port", str(self.port), *args],
                stdout=out, stderr=subprocess.STDOUT,
                env={**base_env, "PYTHONUNBUFFERED": "1", **env},
                start_new_session=own_group,
            )
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(self.base + ready, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"gis serve did not start: {self.text()[-2000:]}")
            time.sleep(0.2)

    def text(self) -> str:
        """The server's output so far."""
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 20 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        """SIGKILL the server (and its workers when it has its own process group)."""
        if self.proc.poll() is None:
            if self.own_group:
                os.killpg(self.proc.pid, signal.SIGKILL)  # the workers too
            else:
                self.proc.kill()
            self.proc.wait(timeout=30)

    def __enter__(self) -> GisServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
