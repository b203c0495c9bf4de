"""A real Jupyter server for the end-to-end tests, and how to drive its notebooks from Playwright.

>>> server = JupyterServer.start(Path("/tmp/nbdir"))   # doctest: +SKIP
>>> page.goto(server.url("lab/tree/grid.ipynb?reset"))  # doctest: +SKIP
>>> server.stop()                                      # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import nbformat

REPO_ROOT = Path(__file__).resolve().parents[2]
LAB_IDLE_TEXT = "Python 3 (ipykernel) | Idle"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_notebook(path: Path, sources: list[str]) -> Path:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    nbformat.write(notebook, str(path))
    return path


def server_env(home: Path) -> dict[str, str]:
    """Environment of the server and so of its kernels.

    The kernelspec runs plain ``python``, so this interpreter's bin/ goes first on PATH; the
    checkout goes on PYTHONPATH so ``headwidget`` imports even when it is not installed. Config,
    runtime, settings and workspace dirs live under ``home`` so no user state leaks in or out.
    """
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(REPO_ROOT), env.get("PYTHONPATH")] if p)
    for var, sub in [
        ("JUPYTER_CONFIG_DIR", "config"),
        ("JUPYTER_RUNTIME_DIR", "runtime"),
        ("JUPYTERLAB_SETTINGS_DIR", "lab-settings"),
        ("JUPYTERLAB_WORKSPACES_DIR", "lab-workspaces"),
        ("IPYTHONDIR", "ipython"),
    ]:
        (home / sub).mkdir(parents=True, exist_ok=True)
        env[var] = str(home / sub)
    env.pop("JUPYTER_TOKEN", None)
    return env


@dataclass
class JupyterServer:
    process: subprocess.Popen
    port: int
    root_dir: Path
    log_path: Path

    @classmethod
    def start(cls, root_dir: Path, home: Path, timeout: float = 90.0) -> JupyterServer:
        port = free_port()
        log_path = home / "jupyter-server.log"
        command = [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            "--ServerApp.port_retries=0",
            "--IdentityProvider.token=",
            "--ServerApp.password=",
            "--allow-root",
            f"--ServerApp.root_dir={root_dir}",
            "--LabApp.news_url=",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]
        log = open(log_path, "wb")  # noqa: SIM115 - closed with the server
        process = subprocess.Popen(
            command, cwd=root_dir, env=server_env(home), stdout=log, stderr=subprocess.STDOUT
        )
        server = cls(process, port, root_dir, log_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited early:\n{server.log_tail()}")
            try:
                with urllib.request.urlopen(server.url("api/status"), timeout=2) as response:
                    json.load(response)
                    return server
            except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
                time.sleep(0.25)
        server.stop()
        raise RuntimeError(f"jupyter lab did not answer within {timeout} s:\n{server.log_tail()}")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        # Our own child only; SIGTERM lets it shut its kernels down.
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
