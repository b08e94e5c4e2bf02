"""Settings per service: shared/settings.py holds what every process (or several) reads;
each service's own settings are its own class, under the same KORTFLYT_* names."""

from __future__ import annotations

import pytest
from pydantic_settings import BaseSettings

from services.intake.settings import IntakeSettings
from services.notify.settings import NotifySettings
from services.production.settings import ProductionSettings
from services.registry_check.settings import RegistryCheckSettings
from services.support.settings import SupportSettings
from services.verify.settings import VerifySettings
from shared.settings import Settings

SERVICES: list[type[BaseSettings]] = [
    IntakeSettings,
    RegistryCheckSettings,
    ProductionSettings,
    NotifySettings,
    VerifySettings,
    SupportSettings,
]


@pytest.mark.parametrize(
    ("settings_type", "variable", "value", "field"),
    [
        (IntakeSettings, "KORTFLYT_UPLOAD_DIR", "/srv/uploads", "upload_dir"),
        (IntakeSettings, "KORTFLYT_REPLAY_LIMIT", "7", "replay_limit"),
        (
            RegistryCheckSettings,
            "KORTFLYT_AAREGISTERET_URL",
            "http://aa.test/api",
            "aaregisteret_url",
        ),
        (ProductionSettings, "KORTFLYT_PRINT_SPOOL_DIR", "/srv/spool", "print_spool_dir"),
        (ProductionSettings, "KORTFLYT_BLOB_DIR", "/srv/blobs", "blob_dir"),
        (NotifySettings, "KORTFLYT_SMTP_PORT", "2525", "smtp_port"),
        (NotifySettings, "KORTFLYT_VERIFY_BASE_URL", "https://v.test", "verify_base_url"),
        (VerifySettings, "KORTFLYT_VERIFY_PORT", "8170", "verify_port"),
        (SupportSettings, "KORTFLYT_SUPPORT_WEB_PORT", "8100", "support_web_port"),
        (
            SupportSettings,
            "KORTFLYT_COMMAND_SIGNING_KEY_FILE",
            "/k.pem",
            "command_signing_key_file",
        ),
        (SupportSettings, "KORTFLYT_DATABASE_URL", "postgresql://x@db/k", "database_url"),
    ],
)
def test_each_service_reads_its_settings_under_the_same_variable_names(
    monkeypatch: pytest.MonkeyPatch,
    settings_type: type[BaseSettings],
    variable: str,
    value: str,
    field: str,
) -> None:
    monkeypatch.setenv(variable, value)
    assert str(getattr(settings_type(), field)) == value


def test_the_common_settings_hold_nothing_of_one_service() -> None:
    common = set(Settings.model_fields)
    assert {"kafka_bootstrap_servers", "database_url", "log_level"} <= common
    for own in ("smtp_host", "print_spool_dir", "aaregisteret_url", "upload_dir"):
        assert own not in common
    assert "smtp_host" not in IntakeSettings.model_fields
    assert "upload_dir" not in NotifySettings.model_fields
