"""Who may do what: every route's access rule, in one table, enforced by one dependency the app
adds to every route. A route without a rule is refused to everyone, and the authorization test
(built from the app's route table) fails until it has one.

Credentials: the API takes ``Authorization: Bearer <key>``; the desk page takes the signed
session cookie set at sign-in (and a CSRF token on every form). A key is for one desk, or admin.
"""

from __future__ import annotations

import math
import os
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from ..config import Settings
from ..store.keys import ApiKey
from .body import read_form
from .deps import store_of


class Access(StrEnum):
    PUBLIC = "public"  # health, the sign-in page
    INTAKE = "intake"  # open to web forms, rate-limited per client address
    INQUIRY = "inquiry"  # no key: the status only; desk: is or was in the desk; admin: any
    INQUIRY_KEY = "inquiry-key"  # as INQUIRY, but a key is needed
    ANY_KEY = "any-key"  # any valid key
    DESK = "desk"  # the {desk} in the path is the key's, or an admin key
    ADMIN = "admin"
    PAGE = "page"  # the desk page, signed in; POSTs carry the CSRF token
    PAGE_DESK = "page-desk"  # the desk page for {desk}, signed in with its key or admin
    PAGE_ADMIN = "page-admin"  # the lead's page: signed in with an admin key
    SIGN_IN = "sign-in"  # the sign-in form: open, with the CSRF token on POST


# Route name (the handler's name) -> rule. The one place access is decided.
POLICY: dict[str, Access] = {
    "health": Access.PUBLIC,
    "create_inquiry": Access.INTAKE,
    "get_inquiry": Access.INQUIRY,
    "inquiry_events": Access.INQUIRY_KEY,
    "classify": Access.ANY_KEY,
    "list_desks": Access.ANY_KEY,
    "desk_queue": Access.DESK,
    "claim_inquiry": Access.DESK,
    "release_inquiry": Access.DESK,
    "resolve_inquiry": Access.DESK,
    "reroute_inquiry": Access.DESK,
    "list_corrections": Access.ADMIN,
    "page_home": Access.SIGN_IN,
    "page_sign_in": Access.SIGN_IN,
    "page_sign_out": Access.PAGE,
    "page_queue": Access.PAGE_DESK,
    "page_inquiry": Access.PAGE_DESK,
    "page_action": Access.PAGE_DESK,
    "page_lead": Access.PAGE_ADMIN,
    "page_lead_promote": Access.PAGE_ADMIN,
    "page_lead_rollback": Access.PAGE_ADMIN,
    "page_lead_compare": Access.PAGE_ADMIN,
}

PAGES = (Access.PAGE, Access.PAGE_DESK, Access.PAGE_ADMIN, Access.SIGN_IN)
SESSION_KEY = "key_id"
CSRF_FIELD = "csrf_token"


class SignInRequired(Exception):
    """A page asked for without a valid session: the app sends the browser to sign in."""


class PageRefused(Exception):
    """A page the signed-in key may not open: the app answers with a page saying why."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail


class _SweptMemoryStorage(MemoryStorage):
    """`limits`' in-memory storage without its expiry timer: it started a new timer thread
    whenever none was running, so a steady trickle of requests (100 a second) started a
    thread for nearly every one, and the event loop waited for each to start. Counters are
    still expired when read; those of addresses that never come back are swept here, at most
    once a minute (a test fails should `limits` rename what this replaces)."""

    SWEEP_EVERY_S = 60.0

    def __init__(self) -> None:
        super().__init__()
        self._swept_at = time.monotonic()

    def _MemoryStorage__schedule_expiry(self) -> None:  # replaces the timer thread
        now = time.monotonic()
        if now - self._swept_at >= self.SWEEP_EVERY_S:
            self._swept_at = now
            self._MemoryStorage__expire_events()  # type: ignore[attr-defined]


class RateLimiter:
    """Per client address, with the `limits` library; ``rule`` like "120/minute;2000/hour"."""

    def __init__(self, rule: str) -> None:
        self.items: list[RateLimitItem] = parse_many(rule) if rule.strip() else []
        self._limiter = SlidingWindowCounterRateLimiter(_SweptMemoryStorage())

    def check(self, scope: str, client: str) -> None:
        for item in self.items:
            if not self._limiter.hit(item, scope, client):
                reset = self._limiter.get_window_stats(item, scope, client).reset_time
                retry = max(1, math.ceil(reset - time.time()))
                raise HTTPException(
                    429,
                    f"too many requests from this address (limit {item}); retry in {retry} s",
                    headers={"Retry-After": str(retry)},
                )


_bearer = HTTPBearer(
    auto_error=False,
    description="a desk or admin key (`inquiry-router keys create`); intake needs none",
)


def csrf_token(request: Request) -> str:
    """The session's CSRF token, made on first use; every page form carries it."""
    token = request.session.get(CSRF_FIELD)
    if not token:
        token = secrets.token_urlsafe(32)
        request.session[CSRF_FIELD] = token
    return str(token)


def session_secret(settings: Settings) -> str:
    """The key the session cookie is signed with: the setting, else one kept in a file beside
    the database (made once, owner-only; every process of the service reads the same)."""
    if settings.session_secret:
        return settings.session_secret
    path = settings.path(Path("data/session.secret"))
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another process is writing it
            secret = path.read_text().strip()
            if secret:
                return secret
            time.sleep(0.02)
        raise RuntimeError(f"{path} is empty; delete it and start again") from None
    secret = secrets.token_urlsafe(48)
    with os.fdopen(descriptor, "w") as file:
        file.write(secret + "\n")
    return secret


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


async def _key_of(request: Request, bearer: HTTPAuthorizationCredentials | None) -> ApiKey | None:
    store = store_of(request)
    if bearer is None:
        if request.headers.get("authorization"):
            raise _unauthorized("the Authorization header must be 'Bearer <key>'")
        return None
    key = await run_in_threadpool(store.keys.authenticate, bearer.credentials)
    if key is None:
        raise _unauthorized("this key is not valid, or was revoked")
    return key


async def _session_key(request: Request) -> ApiKey | None:
    key_id = request.session.get(SESSION_KEY)
    if not key_id:
        return None
    store = store_of(request)
    key = await run_in_threadpool(store.keys.active, str(key_id))
    if key is None:  # revoked since sign-in
        request.session.pop(SESSION_KEY, None)
    return key


async def _check_csrf(request: Request) -> None:
    if request.method != "POST":
        return
    form = await read_form(request)
    expected = request.session.get(CSRF_FIELD)
    given = form.get(CSRF_FIELD, "")
    if not expected or not secrets.compare_digest(str(expected), given):
        raise HTTPException(
            403, "the form's security token is missing or out of date; reload the page"
        )


def _may_act_for(key: ApiKey, desk: str) -> None:
    if not key.is_admin and key.desk != desk:
        raise HTTPException(
            403, f"this key is for desk {key.desk!r}; it cannot act for desk {desk[:64]!r}"
        )


async def authorize(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Applies the route's rule; leaves ``request.state.key`` (or None) and, for an inquiry,
    ``request.state.full_view``."""
    route = request.scope.get("route")
    rule = POLICY.get(getattr(route, "name", ""))
    request.state.key = None
    request.state.full_view = False
    if rule is None:
        raise HTTPException(403, "this route has no access rule, so no one may use it")
    if rule is Access.PUBLIC:
        return
    if rule is Access.INTAKE:
        limiter: RateLimiter = request.app.state.rate_limiter
        limiter.check("intake", request.client.host if request.client else "unknown")
        return
    if rule in PAGES:
        try:
            if rule is not Access.SIGN_IN:
                key = await _session_key(request)
                if key is None:
                    raise SignInRequired()
                request.state.key = key
                if rule is Access.PAGE_DESK:
                    _may_act_for(key, request.path_params.get("desk", ""))
                if rule is Access.PAGE_ADMIN and not key.is_admin:
                    raise HTTPException(403, "the lead's page needs an admin key")
            await _check_csrf(request)
        except HTTPException as refused:  # a person reads it: a page, not JSON
            raise PageRefused(refused.status_code, str(refused.detail)) from None
        return

    key = await _key_of(request, bearer)
    request.state.key = key
    if rule is Access.INQUIRY and key is None:
        return  # the status only
    if key is None:
        raise _unauthorized("this needs a key: send 'Authorization: Bearer <key>'")
    if rule is Access.ADMIN and not key.is_admin:
        raise HTTPException(403, "this needs an admin key")
    if rule is Access.DESK:
        _may_act_for(key, request.path_params.get("desk", ""))
    if rule in (Access.INQUIRY, Access.INQUIRY_KEY):
        store = store_of(request)
        _, desks = await run_in_threadpool(store.desks_of, request.path_params["inquiry_id"])
        if not key.is_admin and key.desk not in desks:
            raise HTTPException(403, "this inquiry is not, and was never, in this key's desk")
        request.state.full_view = True


_ANSWERS: dict[Access, dict[int, dict[str, str]]] = {
    Access.INTAKE: {429: {"description": "too many from this address; see Retry-After"}},
    Access.INQUIRY: {
        401: {"description": "the key given is not valid, or was revoked"},
        403: {"description": "the inquiry was never in this key's desk"},
    },
    Access.INQUIRY_KEY: {
        401: {"description": "no key, or not a valid one"},
        403: {"description": "the inquiry was never in this key's desk"},
    },
    Access.ANY_KEY: {401: {"description": "no key, or not a valid one"}},
    Access.DESK: {
        401: {"description": "no key, or not a valid one"},
        403: {"description": "the key is for another desk"},
    },
    Access.ADMIN: {
        401: {"description": "no key, or not a valid one"},
        403: {"description": "not an admin key"},
    },
}


@dataclass(frozen=True)
class RouteInfo:
    name: str
    path: str  # with {parameters}
    methods: frozenset[str]
    in_schema: bool


def routes_of(app: FastAPI) -> list[RouteInfo]:
    """Every API and page route of the app, through the routers it includes."""
    found = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and context.path_format:
            found.append(
                RouteInfo(
                    route.name,
                    context.path_format,
                    frozenset(route.methods or ()) - {"HEAD"},
                    route.include_in_schema,
                )
            )
    return found


def document(app: FastAPI) -> None:
    """Add to the OpenAPI document the answers each route's rule can give (401, 403, 429),
    and mark the routes that need no key."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        for route in routes_of(app):
            rule = POLICY.get(route.name)
            if rule is None or not route.in_schema:
                continue
            for method in route.methods:
                operation = schema["paths"][route.path][method.lower()]
                for status, answer in _ANSWERS.get(rule, {}).items():
                    operation["responses"].setdefault(
                        str(status),
                        {
                            "description": answer["description"],
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Problem"}
                                }
                            },
                        },
                    )
                if rule in (Access.PUBLIC, Access.INTAKE):
                    operation["security"] = []
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def current_key(request: Request) -> ApiKey:
    """The key a request was authorized with (routes whose rule needs one)."""
    key: ApiKey | None = request.state.key
    assert key is not None, "a route that reads the key must have a rule that needs one"
    return key
