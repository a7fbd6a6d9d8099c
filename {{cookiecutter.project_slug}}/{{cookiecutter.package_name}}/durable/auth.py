"""Who is calling: DBOS's authenticated user and roles, and role checks on functions.

``with DBOSContextSetAuth(user, roles):`` (typically in the app's auth middleware) makes the workflows
started in the block record that user and those roles; their bodies and children run as them, after a
crash too. ``@DBOS.required_roles(["admin"])`` refuses a call (``DBOSNotAuthorizedError``, HTTP 403)
unless the caller holds one of the roles, and records the role it assumed; ``@DBOS.default_required_roles``
gives them to every durable method of a class that does not name its own.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

from .context import AuthInfo, DBOSContext, _current, current_context
from .error import DBOSNotAuthorizedError

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")
_EXPLICIT = "__durable_required_roles__"  # set on a function that names its own roles


class DBOSContextSetAuth:
    """``with DBOSContextSetAuth("alice", ["admin"]):`` authenticates the code and workflows in the block."""

    def __init__(self, user: str | None, roles: list[str] | None) -> None:
        self.user = user
        self.roles = list(roles) if roles is not None else None
        self._saved: AuthInfo | None = None
        self._token: Any = None

    def __enter__(self) -> DBOSContext:
        ctx = _current.get()
        if ctx is None:
            ctx = DBOSContext()
            self._token = _current.set(ctx)
        self._saved = ctx.auth
        ctx.auth = AuthInfo(self.user, self.roles, None)
        return ctx

    def __exit__(self, *exc_info: object) -> None:
        ctx = _current.get()
        if ctx is not None:
            ctx.auth = self._saved
        if self._token is not None:
            _current.reset(self._token)
            self._token = None


def current_auth() -> AuthInfo | None:
    ctx = current_context()
    return ctx.auth if ctx is not None else None


def row_auth(user: str | None, roles_json: Any, assumed_role: str | None) -> AuthInfo | None:
    """The auth recorded in a workflow row (roles as JSON text)."""
    if user is None and roles_json is None and assumed_role is None:
        return None
    return AuthInfo(user, json.loads(roles_json) if roles_json is not None else None, assumed_role)


def auth_columns(auth: AuthInfo | None) -> dict[str, Any]:
    """A workflow row's auth columns for the workflow started under ``auth``."""
    if auth is None:
        return {}
    return {"authenticated_user": auth.user, "assumed_role": auth.assumed_role,
            "authenticated_roles": json.dumps(auth.roles) if auth.roles is not None else None}


def _check(name: str, required: list[str]) -> str | None:
    """The first required role the caller holds; raise if none (no requirement: None)."""
    if not required:
        return None
    auth = current_auth()
    if auth is None or auth.roles is None:
        raise DBOSNotAuthorizedError(f"Function {name} requires a role, but was called in a context without "
                                     "authentication information")
    for role in required:
        if role in auth.roles:
            return role
    raise DBOSNotAuthorizedError(f"Function {name} has required roles, but user is not authenticated for any of them")


def required_roles(roles: list[str]) -> Callable[[F], F]:
    """Refuse calls from callers that hold none of ``roles``; stack it above ``@DBOS.workflow()`` (or step).

    An empty list requires nothing, even in a class with default roles (as in DBOS).
    """

    def decorator(func: F) -> F:
        return _guarded(func, list(roles))

    return decorator


def _guarded(func: F, roles: list[str]) -> F:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        assumed = _check(func.__qualname__, roles)
        ctx = current_context()
        if assumed is None or ctx is None:
            return func(*args, **kwargs)
        saved = ctx.auth
        ctx.auth = replace(saved or AuthInfo(), assumed_role=assumed)
        try:
            return func(*args, **kwargs)
        finally:
            ctx.auth = saved

    wrapper.__durable_required_roles__ = roles  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def default_required_roles(roles: list[str]) -> Callable[[type[T]], type[T]]:
    """Give every durable method of the class that names no roles of its own these required roles."""

    def decorator(klass: type[T]) -> type[T]:
        for name, attr in list(vars(klass).items()):
            kind = type(attr) if isinstance(attr, (classmethod, staticmethod)) else None
            func = attr.__func__ if kind is not None else attr
            if not callable(func) or not hasattr(func, "__durable_info__") or hasattr(func, _EXPLICIT):
                continue
            guarded = _guarded(func, list(roles))
            setattr(klass, name, kind(guarded) if kind is not None else guarded)
        return klass

    return decorator
