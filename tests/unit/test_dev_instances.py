"""deploy.dev runs N instances of every service: each its own pid file, log and heartbeat,
the service's connection budget split among them, and `services up` idempotent (starts
what is missing, stops instances above N)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy import dev
from deploy.dev import services


@pytest.fixture
def profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dev.Profile]:
    monkeypatch.setenv("KORTFLYT_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("KORTFLYT_DB_POOL_MAX", raising=False)
    p = dev.PROFILES["test5"]
    assert p.state == tmp_path
    yield p
    dev.services_down(p)


def test_two_instances_of_a_service_share_no_process_file(profile: dev.Profile) -> None:
    one, two = dev.Instance(profile, "production", 1), dev.Instance(profile, "production", 2)
    files = {one.pidfile, one.logfile, one.health_file, two.pidfile, two.logfile, two.health_file}
    assert len(files) == 6
    assert two.logfile == profile.state / "logs" / "production-2.log"

    envs = [dev.service_env(profile, i, count=2) for i in (one, two)]
    assert [e["KORTFLYT_HEALTH_FILE"] for e in envs] == [str(one.health_file), str(two.health_file)]
    assert [e["KORTFLYT_DB_POOL_MAX"] for e in envs] == ["10", "10"]  # 20 for the service
    assert "KORTFLYT_DB_POOL_MAX" not in dev.service_env(profile, one)  # alone: the default
    # Each its own /metrics and /health port.
    assert [e["KORTFLYT_METRICS_PORT"] for e in envs] == [
        str(one.metrics_port),
        str(two.metrics_port),
    ]
    # Everything else is the profile's shared state: one spool, one blob store, one key.
    own = ("KORTFLYT_HEALTH_FILE", "KORTFLYT_METRICS_PORT")
    shared = {k: v for k, v in envs[0].items() if k not in own}
    assert shared == {k: v for k, v in envs[1].items() if k not in own}


def test_every_process_of_a_profile_has_its_own_metrics_port(profile: dev.Profile) -> None:
    """N instances of every service and the console: no two share a port, none takes a
    port of the profile's other processes or of the next profile."""
    ports = [
        dev.Instance(profile, name, n).metrics_port
        for name in dev.SERVICES
        for n in range(1, services.MAX_INSTANCES + 1)
    ] + [dev.Instance(profile, dev.WEB).metrics_port]
    assert len(set(ports)) == len(ports)
    others = {
        profile.web_port,
        profile.verify_port,
        profile.registers_port,
        profile.docstore_port,
        profile.smtp_port,
        profile.kafka_port,
        profile.controller_port,
        profile.pg_port,
    }
    assert not others & set(ports)
    next_profile = dev.PROFILES["test6"]
    assert max(ports) < next_profile.web_port  # test6's block starts 100 ports higher
    assert [url for name, url in dev.metrics_urls(profile, 2) if name == "notify-2"] == [
        f"http://127.0.0.1:{dev.Instance(profile, 'notify', 2).metrics_port}"
    ]
    with pytest.raises(dev.DevError, match="between 1 and"):
        dev.services_up(profile, services.MAX_INSTANCES + 1)


def test_instances_are_found_by_their_numbered_pid_files(profile: dev.Profile) -> None:
    run = profile.state / "run"
    run.mkdir(parents=True)
    for name in ("notify-2.pid", "notify-1.pid", "notify-x.pid", "notify.pid", "intake-1.pid"):
        (run / name).write_text("0")  # no process: never signalled
    assert [i.name for i in dev.instances(profile, "notify")] == ["notify-1", "notify-2"]


def test_services_up_is_idempotent_and_scales_down(
    profile: dev.Profile, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real processes (`sleep`) stand in for the services; the fakes, the keys and the
    console (one process, not scaled) are not started."""
    for helper in ("fakes_up", "proof_key_up", "command_keys_up", "web_up"):
        monkeypatch.setattr(services, helper, lambda _p: None)
    monkeypatch.setattr(
        services,
        "start_instance",
        lambda _p, i, _env: dev.spawn(["sleep", "60"], i.logfile, i.pidfile),
    )

    def running() -> dict[str, int]:
        return {
            i.name: pid
            for name in dev.SERVICES
            for i in dev.instances(profile, name)
            if (pid := i.pid) is not None
        }

    dev.services_up(profile, 2)
    first = running()
    assert sorted(first) == sorted(f"{s}-{n}" for s in dev.SERVICES for n in (1, 2))
    dev.services_up(profile, 2)
    assert running() == first  # nothing restarted
    dev.services_up(profile, 1)
    assert running() == {f"{s}-1": first[f"{s}-1"] for s in dev.SERVICES}
    dev.services_down(profile)
    assert running() == {}


@pytest.mark.parametrize(
    ("process", "role"),
    [
        ("intake", "kortflyt_intake"),
        ("registry_check", "kortflyt_registry_check"),
        ("production", "kortflyt_production"),
        ("notify", "kortflyt_notify"),
        ("support", "kortflyt_support"),
        ("verify", "kortflyt_verify"),
        (dev.WEB, "kortflyt_support"),  # the console: support's role
        ("support-cli", "kortflyt_support"),  # the command line `make run` uses
    ],
)
def test_every_service_process_connects_as_its_own_role(
    profile: dev.Profile, process: str, role: str
) -> None:
    env = dev.service_env(profile, dev.Instance(profile, process))
    assert env["KORTFLYT_DATABASE_URL"] == (
        f"postgresql://{role}@127.0.0.1:{profile.pg_port}/kortflyt"
    )
    assert "KORTFLYT_ADMIN_DATABASE_URL" not in env  # never the administrator's
    # A process of the profile that is no service (tests, tools) keeps the administrator's.
    assert profile.env()["KORTFLYT_DATABASE_URL"] == profile.database_url
