"""The admin panel's pages, one module per subject, each registering its routes."""

from __future__ import annotations

from admin_ui.runtime import Runtime


def register_all(runtime: Runtime) -> None:
    """Register every page of the panel, the terminal and self-enrolment."""
    from admin_ui import auth
    from admin_ui.pages import (
        audit_log,
        campaigns,
        cards,
        customers,
        dashboard,
        enroll,
        finance,
        merchants,
        pipeline,
        programs,
        stats,
        stores,
        terminal,
        webhooks,
    )

    for module in (
        auth,
        dashboard,
        merchants,
        stores,
        programs,
        campaigns,
        customers,
        cards,
        stats,
        finance,
        webhooks,
        audit_log,
        pipeline,
        terminal,
        enroll,
    ):
        module.register(runtime)
