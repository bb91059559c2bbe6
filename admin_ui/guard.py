"""The one sign-in check of every admin page: ``@admin_page(rt, path)``.

The decorated function takes the signed-in admin (a ``Principal``) first, then the page's own
parameters (path and query parameters, ``request`` if it wants it), and is registered as a
NiceGUI page. Without a signed-in admin, or when the admin was disabled or their merchant
deleted since, the request is sent to the sign-in page and back here afterwards; the page's
function is not called. The auth middleware already sends visitors without a session there:
this check also shuts out a session whose user is gone, at the next click.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from nicegui import ui
from starlette.responses import Response

from admin_ui import auth
from admin_ui.runtime import Runtime

PageBuilder = Callable[..., Awaitable[Response | None]]


def admin_page(rt: Runtime, path: str, **page_options: Any) -> Callable[[PageBuilder], PageBuilder]:
    """Register the decorated function as the admin page at ``path``, for signed-in admins
    only; ``page_options`` go to ``ui.page``. The function itself is returned unchanged."""

    def register(build: PageBuilder) -> PageBuilder:
        parameters = list(inspect.signature(build).parameters.values())[1:]  # all but the admin
        wants_request = any(p.name == "request" for p in parameters)
        if not wants_request:
            request = inspect.Parameter(
                "request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request
            )
            parameters.insert(0, request)

        @functools.wraps(build)
        async def page(request: Request, **kwargs: Any) -> Response | None:
            me = await auth.current_principal(rt)
            if me is None:
                return auth.to_login(request)
            if wants_request:
                kwargs["request"] = request
            return await build(me, **kwargs)

        # FastAPI reads the route's parameters from this signature: the page's own, without
        # the admin (``functools.wraps`` keeps ``build`` for their annotations' names).
        page.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        ui.page(path, **page_options)(page)
        return build

    return register
