"""The one sign-in check of every admin page: ``@admin_page(rt, path)``.

The decorated function takes the signed-in admin (a ``Principal``) first, then the page's own
parameters (path and query parameters, ``request`` if it wants it), and is registered as a
NiceGUI page. Without a signed-in admin, or when the admin was disabled or their merchant
deleted since, the request is sent to the sign-in page and back here afterwards; the page's
function is not called. The auth middleware already sends visitors without a session there:
this check also shuts out a session whose user is gone, at the next click.

It is also where the panel says who acts, for the admin audit trail: the page is built as the
signed-in admin (``runtime.acting_admin``), whose name stays in the page's storage
(``app.storage.client``) for its event handlers, whose transactions then act as them
(``runtime.transaction`` asks ``page_admin``).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from nicegui import app, ui
from starlette.responses import Response

from admin_ui import auth
from admin_ui.runtime import Runtime, acting_admin

PageBuilder = Callable[..., Awaitable[Response | None]]

_ADMIN_KEY = "audit_admin"


def page_admin() -> str | None:
    """The admin whose page's code runs now (a page being built or one of its handlers);
    ``None`` elsewhere: the terminal, self-enrolment, plain HTTP routes, outside the app."""
    if not app.is_started:
        # Outside a running app NiceGUI would make up a page of its own ("script mode").
        return None
    try:
        admin = app.storage.client.get(_ADMIN_KEY)
    except RuntimeError:  # no page at all: a plain HTTP route, a background task
        return None
    return admin if isinstance(admin, str) else None


def admin_page(rt: Runtime, path: str, **page_options: Any) -> Callable[[PageBuilder], PageBuilder]:
    """Register the decorated function as the admin page at ``path``, for signed-in admins
    only; ``page_options`` go to ``ui.page``. The function itself is returned unchanged."""
    # The runtime's transactions ask this module who acts: it is the one that knows pages.
    rt.page_admin = page_admin

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
            app.storage.client[_ADMIN_KEY] = me.username
            with acting_admin(me.username):
                return await build(me, **kwargs)

        # FastAPI reads the route's parameters from this signature: the page's own, without
        # the admin (``functools.wraps`` keeps ``build`` for their annotations' names).
        page.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        ui.page(path, **page_options)(page)
        return build

    return register
