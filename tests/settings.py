"""Every service's settings in one object, for tests that drive several services' parts
with what their profile sets for all of them (as python -m deploy.dev does for its processes)."""

from __future__ import annotations

from services.intake.settings import IntakeSettings
from services.notify.settings import NotifySettings
from services.production.settings import ProductionSettings
from services.registry_check.settings import RegistryCheckSettings
from services.support.settings import SupportSettings
from services.verify.settings import VerifySettings


class AllSettings(
    IntakeSettings,
    RegistryCheckSettings,
    ProductionSettings,
    NotifySettings,
    VerifySettings,
    SupportSettings,
):
    pass
