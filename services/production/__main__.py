from services.production.settings import ProductionSettings
from services.production.stage import build
from shared.runtime import run

run(build, ProductionSettings)
