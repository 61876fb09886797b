"""Who is asking: the signed session cookie, the CSRF token every form
carries, and the operator behind a request.

The session is Starlette's: a cookie signed with ``COLLECTIONS_DESK_SECRET``
(itsdangerous), HttpOnly, SameSite=Lax, Secure when the desk is served over
HTTPS, ending after 8 idle hours. It holds the operator's name and one CSRF
token; signing in starts a new session with a new token. Every POST must
carry the session's token (``csrf`` form field), compared in constant time.
The operator is read from the database on each request, so a deactivation or
a change of role takes effect at once.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from fastapi import Request
from starlette.datastructures import FormData

from db.session import Database
from desk import operators
from desk.operators import Actor

SESSION_COOKIE = "desk_session"
SESSION_IDLE_SECONDS = 8 * 3600
MAX_FORM_BYTES = 64 * 1024


@dataclass
class PageError(Exception):
    """A request refused: its HTTP status and the one line the page shows."""

    status: int
    message: str
    title: str = "Not done"


class SignInNeeded(PageError):
    def __init__(self, message: str = "you are not signed in, or your session has ended: sign in again") -> None:
        super().__init__(401, message, "Sign in")


def csrf_token(request: Request) -> str:
    """The session's CSRF token (made on first use: the sign-in form has one too)."""
    token = request.session.get("csrf")
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def start_session(request: Request, actor: Actor) -> None:
    """Signed in: a fresh session (no state carried over from before) with a new token."""
    request.session.clear()
    request.session["operator"] = actor.name
    request.session["csrf"] = secrets.token_urlsafe(32)


def end_session(request: Request) -> None:
    request.session.clear()


async def posted_form(request: Request) -> FormData:
    """The form of a POST whose CSRF token matches the session's, else :class:`PageError` 403."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_FORM_BYTES):
        raise PageError(413, f"the form is too large (at most {MAX_FORM_BYTES // 1024} KiB)")
    form = await request.form()
    expected = request.session.get("csrf")
    given = form.get("csrf")
    if not isinstance(expected, str) or not expected:
        raise PageError(403, "this form has expired or your browser refused the desk's cookie: reload the page "
                             "and try again", "Form expired")
    if not isinstance(given, str) or not secrets.compare_digest(given.encode(), expected.encode()):
        raise PageError(403, "the form's security token is missing or does not match your session: reload the "
                             "page and try again (nothing was changed)", "Form refused")
    return form


async def current_operator(request: Request, db: Database) -> Actor:
    """The signed-in operator, active, from the database; else :class:`SignInNeeded`."""
    name = request.session.get("operator")
    if not isinstance(name, str) or not name:
        raise SignInNeeded()
    actor = await operators.get_operator(db, name)
    if actor is None or not actor.active:
        end_session(request)
        raise SignInNeeded(f"operator {name} is no longer active: sign in again" if actor else
                           "your operator record no longer exists: sign in again")
    return actor
