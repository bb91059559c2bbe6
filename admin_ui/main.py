"""The admin panel's main file, as NiceGUI runs it (``user`` test fixture: ``main_file``)."""

from nicegui import ui

from admin_ui.app import build, run_options
from core.settings import get_settings

settings = get_settings()
build(settings)

if __name__ in {"__main__", "__mp_main__"}:
    ui.run(**run_options(settings))
