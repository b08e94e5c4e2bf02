from services.support.settings import SupportSettings
from services.support.stage import build
from shared.runtime import run

run(build, SupportSettings)
