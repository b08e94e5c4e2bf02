from services.intake.settings import IntakeSettings
from services.intake.stage import build
from shared.runtime import run

run(build, IntakeSettings)
