from services.registry_check.settings import RegistryCheckSettings
from services.registry_check.stage import build
from shared.runtime import run

run(build, RegistryCheckSettings)
