"""The landing page: a merchant's day and month at a glance (issue 18, item 1)."""

from __future__ import annotations

from fastapi.responses import RedirectResponse
from starlette.responses import Response

from admin_ui.guard import admin_page
from admin_ui.queries.admins import Principal
from admin_ui.runtime import Runtime


def register(rt: Runtime) -> None:
    """The dashboard at ``/``."""

    @admin_page(rt, "/")
    async def home(me: Principal) -> Response | None:
        # Placeholder until the dashboard lands: the previous start pages.
        if me.is_platform:
            return RedirectResponse("/merchants")
        return RedirectResponse(f"/merchants/{me.merchant_id}")
