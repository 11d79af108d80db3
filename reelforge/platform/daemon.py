"""`reelforge up` / `reelforge down`: the local platform (`reelforge serve`) as a background process.

`up` starts `reelforge serve` detached, with its log and pid file under the home, and returns once
the API answers `/healthz` (or fails with the log's tail if the server dies first). `down` sends
SIGTERM (the server stops like Ctrl-C: accepted jobs resume at the next start) and waits for it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from reelforge.errors import UserInputError


@dataclass(frozen=True)
class DaemonFiles:
    """Where a home keeps the background server's pid and log."""

    pid: Path
    log: Path

    @classmethod
    def under(cls, home: Path) -> DaemonFiles:
        return cls(home / "run" / "serve.pid", home / "logs" / "serve.log")


def is_running(pid: int) -> bool:
    """Whether `pid` runs; an exited process nobody has reaped yet (a zombie) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no procfs (macOS): signal 0 is all we know
    return state != "Z"


def running_pid(files: DaemonFiles) -> int | None:
    """The background server's pid, if it is running (a stale pid file is removed)."""
    if not files.pid.is_file():
        return None
    pid = int(files.pid.read_text().strip() or 0)
    if pid and is_running(pid):
        return pid
    files.pid.unlink(missing_ok=True)
    return None


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def start(home: Path, config: Path | None, host: str, port: int, timeout_s: float = 600.0) -> int:
    """Start `reelforge serve` in the background and wait until it answers; returns its pid."""
    files = DaemonFiles.under(home)
    if (pid := running_pid(files)) is not None:
        raise UserInputError(f"reelforge is already running (pid {pid}); `reelforge down` stops it")
    files.pid.parent.mkdir(parents=True, exist_ok=True)
    files.log.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "reelforge", "serve", "--host", host, "--port", str(port)]
    if config is not None:
        command += ["--config", str(config.resolve())]
    env = {**os.environ, "REELFORGE_HOME": str(home)}
    with open(files.log, "ab") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True
        )  # survives this shell; Ctrl-C here does not reach it
    files.pid.write_text(str(process.pid))
    deadline = time.monotonic() + timeout_s
    while not _healthy(f"http://{host}:{port}/healthz"):
        if process.poll() is not None:
            files.pid.unlink(missing_ok=True)
            tail = files.log.read_text(errors="replace")[-2000:]
            raise UserInputError(
                f"reelforge serve exited with {process.returncode} while starting; log {files.log}:\n{tail}"
            )
        if time.monotonic() > deadline:
            stop(home)
            raise UserInputError(f"reelforge serve did not answer within {timeout_s:.0f} s; see {files.log}")
        time.sleep(0.5)  # polling a starting server; it offers nothing to wait on
    return process.pid


def stop(home: Path, timeout_s: float = 120.0) -> int | None:
    """SIGTERM the background server and wait for it to exit; returns the pid it stopped, or None."""
    files = DaemonFiles.under(home)
    pid = running_pid(files)
    if pid is None:
        return None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while is_running(pid):
        try:  # reap it when it is our child (a test, or `up` and `down` in one process)
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        if time.monotonic() > deadline:
            os.killpg(pid, signal.SIGKILL)
            break
        time.sleep(0.2)
    files.pid.unlink(missing_ok=True)
    return pid
