"""The development fakes (devtools/fakes/) as processes of a profile: the fake registers (and
Maskinporten), the fake document store and the mail sink."""

from __future__ import annotations

import sys

from deploy.dev.keys import maskinporten_dev_key
from deploy.dev.processes import DevError, log, port_open, read_pid, spawn, stop_pid, wait_for
from deploy.dev.profiles import Profile

FAKES = ("mail-sink", "fake-registers", "docstore")


def fake_up(p: Profile, name: str, port: int, module: str, *args: str) -> None:
    """Start one of our development fakes (devtools/fakes/) unless it runs: idempotent."""
    pidfile = p.state / "run" / f"{name}.pid"
    if read_pid(pidfile) is not None:
        log(f"{name} already running on 127.0.0.1:{port}")
        return
    if port_open(port):
        raise DevError(f"port {port} ({name}) is taken by another process")
    logfile = p.state / "logs" / f"{name}.log"
    cmd = [sys.executable, "-m", module, "--port", str(port), *args]
    pid = spawn(cmd, logfile, pidfile)
    wait_for(name, lambda: port_open(port), 30, logfile)
    log(f"{name} started (pid {pid}, 127.0.0.1:{port}, log {logfile})")


def mail_sink_up(p: Profile) -> None:
    """The development mail sink: every e-mail lands as a .eml file in p.mail_dir."""
    fake_up(p, "mail-sink", p.smtp_port, "devtools.fakes.mail_sink", "--dir", str(p.mail_dir))


def docstore_up(p: Profile) -> None:
    """The fake document store: the portal's documents over HTTP, with fault injection."""
    fake_up(
        p,
        "docstore",
        p.docstore_port,
        "devtools.fakes.docstore",
        "--host",
        "127.0.0.1",
        "--dir",
        str(p.state / "docstore"),
    )


def registers_up(p: Profile) -> None:
    """The fake registers with their default seed, and Maskinporten for the dev client key."""
    fake_up(
        p,
        "fake-registers",
        p.registers_port,
        "devtools.fakes.registers",
        "--host",
        "127.0.0.1",
        "--maskinporten-public-key",
        str(maskinporten_dev_key(p)),
        "--maskinporten-audience",
        f"{p.registers_url}/maskinporten/",
    )


def fakes_up(p: Profile) -> None:
    """Every fake the services of a profile talk to; idempotent."""
    mail_sink_up(p)
    registers_up(p)
    docstore_up(p)


def fakes_down(p: Profile) -> None:
    for name in FAKES:
        stop_pid(name, p.state / "run" / f"{name}.pid")
