"""Processes of the local system: start one in its own session with a pid file and a log,
find it again by its pid file, wait for a port, stop it."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from deploy.dev.profiles import ROOT


class DevError(Exception):
    """A problem the operator must fix; printed as one line."""


def log(msg: str) -> None:
    print(f"[dev] {msg}", flush=True)


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def read_pid(pidfile: Path) -> int | None:
    try:
        pid = int(pidfile.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    if pid <= 0:  # 0 and -1 would name our own process group, or every process
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    if _is_zombie(pid):
        return None
    return pid


def _is_zombie(pid: int) -> bool:
    """A child that exited but was not reaped (our own, when a test started it): reap it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    if state != "Z":
        return False
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    return True


def wait_for(what: str, check: object, timeout: float, logfile: Path | None = None) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    hint = f" (see {logfile})" if logfile else ""
    raise DevError(f"{what} did not become ready within {timeout:.0f}s{hint}")


def stop_pid(name: str, pidfile: Path, timeout: float = 30.0) -> None:
    pid = read_pid(pidfile)
    if pid is None:
        pidfile.unlink(missing_ok=True)
        return
    log(f"stopping {name} (pid {pid})")
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and read_pid(pidfile) is not None:
        time.sleep(0.2)
    if read_pid(pidfile) is not None:
        log(f"{name} did not stop within {timeout:.0f}s; killing it")
        os.killpg(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)


def spawn(
    cmd: list[str],
    logfile: Path,
    pidfile: Path,
    env: dict[str, str] | None = None,
    cwd: Path = ROOT,
) -> int:
    logfile.parent.mkdir(parents=True, exist_ok=True)
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    with logfile.open("ab") as out:
        proc = subprocess.Popen(  # noqa: S603 - fixed argv built by this script
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
    pidfile.write_text(str(proc.pid))
    return proc.pid


def require(tool: str, install_hint: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise DevError(f"`{tool}` not found: install {install_hint}")
    return path
