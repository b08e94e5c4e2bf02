from services.notify.settings import NotifySettings
from services.notify.stage import build
from shared.runtime import run

run(build, NotifySettings)
