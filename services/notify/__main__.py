from services.notify.stage import build
from shared.runtime import run

run(build)
