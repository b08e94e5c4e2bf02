"""Profiles: one local system each (its ports and its state directory), so the tests never
touch a developer's running system: `dev` (Kafka 9092, PostgreSQL 5432), `test` (19092,
15432) and `test1`..`test6` (ports +100 each) for test runs sharing one machine."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from shared.dbroles import role_of

ROOT = Path(__file__).resolve().parents[2]
# The registers registry_check asks; in development all are served by one fake server.
FAKE_REGISTERS = (
    "enhetsregisteret",
    "renholdsregisteret",
    "bemanningsforetaksregisteret",
    "aaregisteret",
    "folkeregisteret",
)


@dataclass(frozen=True)
class Profile:
    name: str
    kafka_port: int
    controller_port: int
    pg_port: int

    @property
    def state(self) -> Path:
        base = os.environ.get("KORTFLYT_STATE_DIR")
        return Path(base) if base else ROOT / ".state" / self.name

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def database_url(self) -> str:
        """The administrator's (superuser `kortflyt`): provisioning, tests and tools that
        read across schemas. A service connects as its own role (`database_url_of`)."""
        return f"postgresql://kortflyt@127.0.0.1:{self.pg_port}/kortflyt"

    def database_url_of(self, service: str) -> str:
        """A service's own role, which owns its schema and reads no other (shared/dbroles.py)."""
        return f"postgresql://{role_of(service)}@127.0.0.1:{self.pg_port}/kortflyt"

    @property
    def smtp_port(self) -> int:
        """The mail sink's port: 1025 for dev, 11025 for test, +100 for each testN."""
        return self.kafka_port - 8067

    @property
    def registers_port(self) -> int:
        """The fake registers' port: 8080 for dev, 18080 for test, +100 for each testN."""
        return self.kafka_port - 1012

    @property
    def docstore_port(self) -> int:
        """The fake document store's port: 8090 for dev, 18090 for test, +100 for each testN."""
        return self.kafka_port - 1002

    @property
    def verify_port(self) -> int:
        """The verify service's web port: 8070 for dev, 18070 for test, +100 for each testN."""
        return self.kafka_port - 1022

    @property
    def verify_url(self) -> str:
        return f"http://127.0.0.1:{self.verify_port}"

    @property
    def docstore_url(self) -> str:
        return f"http://127.0.0.1:{self.docstore_port}"

    @property
    def web_port(self) -> int:
        """The support console's port: 8000 for dev, 18000 for test, +100 for each testN."""
        return self.kafka_port - 1092

    @property
    def metrics_base_port(self) -> int:
        """The first `/metrics` + `/health` port (deploy.dev.services numbers them from it):
        8001 for dev, 18001 for test, +100 for each testN."""
        return self.kafka_port - 1091

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}/"

    @property
    def command_key(self) -> Path:
        """support's command signing key (the owning services trust its public half)."""
        return self.state / "keys" / "command-ed25519.pem"

    @property
    def registers_url(self) -> str:
        return f"http://127.0.0.1:{self.registers_port}"

    @property
    def mail_dir(self) -> Path:
        """Where the mail sink keeps every e-mail the services sent (.eml files)."""
        return self.state / "mail"

    @property
    def spool_dir(self) -> Path:
        """The card printer's hot folder: one PDF per card and manifest.jsonl."""
        return self.state / "spool"

    def env(self) -> dict[str, str]:
        """The settings every kortflyt process of this profile runs with."""
        return {
            "KORTFLYT_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            # The administrator's: a service process gets its own role's (service_env).
            "KORTFLYT_DATABASE_URL": self.database_url,
            "KORTFLYT_ADMIN_DATABASE_URL": self.database_url,
            "KORTFLYT_BLOB_DIR": str(self.state / "blobs"),
            "KORTFLYT_UPLOAD_DIR": str(self.state / "uploads"),
            "KORTFLYT_DOCUMENT_HOSTS": f"127.0.0.1:{self.docstore_port}",
            "KORTFLYT_PRINT_SPOOL_DIR": str(self.spool_dir),
            **{
                f"KORTFLYT_{register.upper()}_URL": f"{self.registers_url}/{register}/api"
                for register in FAKE_REGISTERS
            },
            "KORTFLYT_SMTP_HOST": "127.0.0.1",
            "KORTFLYT_SMTP_PORT": str(self.smtp_port),
            "KORTFLYT_PROOF_KEY_FILE": str(self.state / "keys" / "proof-ed25519.pem"),
            "KORTFLYT_PROOF_PUBLIC_KEY_FILE": str(self.state / "proof-public-key.pem"),
            # The fake registers are also Maskinporten: a dev client key (registers_up makes it).
            "KORTFLYT_MASKINPORTEN_CLIENT_ID": "kortflyt-dev",
            "KORTFLYT_MASKINPORTEN_KEY_FILE": str(self.maskinporten_key),
            "KORTFLYT_MASKINPORTEN_TOKEN_URL": f"{self.registers_url}/maskinporten/token",
            "KORTFLYT_MASKINPORTEN_AUDIENCE": f"{self.registers_url}/maskinporten/",
            "KORTFLYT_CARD_KEY_FILE": str(self.state / "keys" / "card-ed25519.pem"),
            "KORTFLYT_CARD_PUBLIC_KEY_FILE": str(self.state / "card-public-key.pem"),
            "KORTFLYT_VERIFY_BASE_URL": self.verify_url,
            "KORTFLYT_VERIFY_PORT": str(self.verify_port),
            "KORTFLYT_COMMAND_SIGNING_KEY_FILE": str(self.command_key),
            "KORTFLYT_COMMAND_PUBLIC_KEY_FILES": str(self.command_key.with_suffix(".pub.pem")),
            "KORTFLYT_SUPPORT_WEB_PORT": str(self.web_port),
            # The console's address as an OpenID Connect issuer would redirect back to it.
            "KORTFLYT_SUPPORT_PUBLIC_URL": self.web_url.rstrip("/"),
        }

    @property
    def maskinporten_key(self) -> Path:
        """The development Maskinporten client's RSA key (its public half beside it)."""
        return self.state / "keys" / "maskinporten-client.pem"


PROFILES = {
    "dev": Profile("dev", 9092, 9093, 5432),
    "test": Profile("test", 19092, 19093, 15432),
    # Side-by-side test systems, for engineers running suites in parallel on one machine.
    **{
        f"test{n}": Profile(f"test{n}", 19092 + 100 * n, 19093 + 100 * n, 15432 + 100 * n)
        for n in range(1, 7)
    },
}


def test_profile() -> Profile:
    """The profile the tests run on: KORTFLYT_PROFILE when it names a test profile, else `test`."""
    name = os.environ.get("KORTFLYT_PROFILE", "test")
    return PROFILES[name if name.startswith("test") and name in PROFILES else "test"]
