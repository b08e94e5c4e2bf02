"""`python -m deploy.dev`: the command line (see the package's docstring)."""

from __future__ import annotations

import argparse
import os
import shutil
import sys

import deploy.dev
from deploy.dev.infra import infra_down, infra_up
from deploy.dev.processes import DevError, log, port_open, read_pid
from deploy.dev.profiles import PROFILES, Profile
from deploy.dev.services import SERVICES, WEB, Instance, instances, services_down, services_up


def status(p: Profile) -> int:
    rows = [
        ("postgres", port_open(p.pg_port), f"127.0.0.1:{p.pg_port}"),
        ("kafka", read_pid(p.state / "run" / "kafka.pid") is not None, p.bootstrap),
    ]
    for name in SERVICES:
        for instance in instances(p, name) or [Instance(p, name)]:
            pid = instance.pid
            where = f"pid {pid}, {instance.metrics_url}/metrics" if pid else "-"
            rows.append((instance.name, pid is not None, where))
    sink = read_pid(p.state / "run" / "mail-sink.pid")
    rows.append(("mail-sink", sink is not None, f"127.0.0.1:{p.smtp_port}, {p.mail_dir}"))
    fake = read_pid(p.state / "run" / "fake-registers.pid")
    rows.append(("fake-registers", fake is not None, p.registers_url))
    store = read_pid(p.state / "run" / "docstore.pid")
    rows.append(("docstore", store is not None, p.docstore_url))
    web = read_pid(p.state / "run" / f"{WEB}.pid")
    rows.append((WEB, web is not None, f"{p.web_url}, {Instance(p, WEB).metrics_url}/metrics"))
    for name, up, where in rows:
        print(f"{name:16} {'running' if up else 'stopped':8} {where}")
    return 0 if all(up for _, up, _ in rows) else 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.dev",
        description=deploy.dev.__doc__,
        formatter_class=argparse.RawTextHelpFormatter,
    )
    parser.add_argument(
        "--profile", choices=sorted(PROFILES), default=os.environ.get("KORTFLYT_PROFILE", "dev")
    )
    parser.add_argument(
        "what", choices=["infra", "services", "up", "down", "status", "reset", "env"]
    )
    parser.add_argument("action", nargs="?", choices=["up", "down", "status"])
    parser.add_argument(
        "--instances", type=int, default=1, metavar="N", help="services up: N of each service"
    )
    args = parser.parse_args(argv)
    if args.instances < 1:
        parser.error("--instances must be at least 1")
    p = PROFILES[args.profile]
    what, action = args.what, args.action
    if what in ("up", "down", "status"):
        what, action = "all", what
    try:
        if what == "env":
            for key, value in p.env().items():
                print(f"export {key}={value}")
            return 0
        if what == "reset":
            services_down(p)
            infra_down(p)
            shutil.rmtree(p.state, ignore_errors=True)
            log(f"removed {p.state}")
            return 0
        if action == "status":
            return status(p)
        if action == "up":
            if what in ("infra", "all"):
                infra_up(p)
            if what in ("services", "all"):
                services_up(p, args.instances)
        elif action == "down":
            if what in ("services", "all"):
                services_down(p)
            if what in ("infra", "all"):
                infra_down(p)
        else:
            parser.error("say up, down or status")
    except DevError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
