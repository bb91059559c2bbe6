"""A NiceGUI main file with only the customer's card page (``user`` fixture: ``main_file``).

The page opens its own database with the app and reads the wallet settings from the
environment, both of which the tests point at their own.
"""

from nicegui import ui

from admin_ui.card_page import register_card_page

register_card_page()

if __name__ in {"__main__", "__mp_main__"}:
    ui.run(storage_secret="card-page-tests", reload=False, show=False)
