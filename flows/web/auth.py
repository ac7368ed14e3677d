"""Sessions, CSRF and login throttling for the workspace.

- The session is a signed cookie (itsdangerous, keyed by ``settings.secret_key``): user id,
  a per-session CSRF token and the issue time; HttpOnly, SameSite=Lax, expires after
  :data:`SESSION_SECONDS`. The user is re-read on every request, so disabling a login takes
  effect at once.
- Every state-changing request carries the session's CSRF token in a hidden ``csrf_token``
  field (or the ``X-CSRF-Token`` header); a missing or wrong token is a 403. The login form
  gets its own token bound to a short-lived pre-session cookie.
- Failed logins are throttled in memory per user name and per client address with a
  sliding window (:class:`LoginThrottle`); one process serves the workspace, so the window
  lives with it and resets on restart, which is acceptable for a brute-force brake.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from starlette.responses import Response

SESSION_COOKIE = "qf_session"
PRELOGIN_COOKIE = "qf_prelogin"
LANG_COOKIE = "qf_lang"
SESSION_SECONDS = 8 * 3600
PRELOGIN_SECONDS = 3600


class NotLoggedIn(Exception):
    """The request has no valid session; pages redirect to the login form."""


class CsrfFailed(Exception):
    """A state-changing request without the session's CSRF token."""


@dataclass(frozen=True)
class SessionData:
    user_id: int
    csrf: str
    issued: float


class Sessions:
    """Signs and reads the session and pre-login cookies."""

    def __init__(self, secret: str, *, secure: bool = False) -> None:
        self._session = URLSafeTimedSerializer(secret, salt="qunflow.session")
        self._prelogin = URLSafeTimedSerializer(secret, salt="qunflow.prelogin")
        self.secure = secure

    def issue(self, response: Response, user_id: int) -> SessionData:
        data = SessionData(user_id=user_id, csrf=secrets.token_urlsafe(24), issued=time.time())
        value = self._session.dumps({"u": user_id, "c": data.csrf, "t": data.issued})
        response.set_cookie(
            SESSION_COOKIE,
            value,
            max_age=SESSION_SECONDS,
            httponly=True,
            samesite="lax",
            secure=self.secure,
            path="/",
        )
        response.delete_cookie(PRELOGIN_COOKIE, path="/")
        return data

    def read(self, request: Request) -> SessionData | None:
        raw = request.cookies.get(SESSION_COOKIE)
        if not raw:
            return None
        try:
            data: dict[str, Any] = self._session.loads(raw, max_age=SESSION_SECONDS)
        except (BadSignature, SignatureExpired):
            return None
        try:
            return SessionData(user_id=int(data["u"]), csrf=str(data["c"]), issued=float(data["t"]))
        except (KeyError, TypeError, ValueError):
            return None

    def clear(self, response: Response) -> None:
        response.delete_cookie(SESSION_COOKIE, path="/")

    def prelogin_token(self, request: Request) -> str:
        """The login form's CSRF token: the one in the pre-login cookie, or a new one."""
        return self.read_prelogin(request) or secrets.token_urlsafe(24)

    def set_prelogin(self, response: Response, token: str) -> None:
        """Keep the login form's token in a signed short-lived cookie."""
        response.set_cookie(
            PRELOGIN_COOKIE,
            self._prelogin.dumps(token),
            max_age=PRELOGIN_SECONDS,
            httponly=True,
            samesite="lax",
            secure=self.secure,
            path="/",
        )

    def read_prelogin(self, request: Request) -> str | None:
        raw = request.cookies.get(PRELOGIN_COOKIE)
        if not raw:
            return None
        try:
            return str(self._prelogin.loads(raw, max_age=PRELOGIN_SECONDS))
        except (BadSignature, SignatureExpired):
            return None


def tokens_match(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison of CSRF tokens; missing on either side never matches."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


SWEEP_MIN = 4096  # entries kept before the first sweep


class LoginThrottle:
    """Sliding-window limit on failed logins per user name and per client address."""

    def __init__(
        self, *, per_user: int = 5, per_address: int = 20, window_seconds: float = 300.0
    ) -> None:
        self.per_user = per_user
        self.per_address = per_address
        self.window = window_seconds
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._sweep_at = SWEEP_MIN
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        hits = self._failures.setdefault(key, deque())
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        return hits

    def _sweep(self, now: float) -> None:
        # Names and addresses whose failures all slid out are forgotten, so a spray of made-up
        # names cannot grow the table without bound; swept when it doubles since the last time.
        if len(self._failures) < self._sweep_at:
            return
        cutoff = now - self.window
        self._failures = {k: v for k, v in self._failures.items() if v and v[-1] > cutoff}
        self._sweep_at = max(SWEEP_MIN, 2 * len(self._failures))

    def blocked(self, username: str, address: str, now: float | None = None) -> bool:
        """True when either the user name or the address used up its failures."""
        now = time.monotonic() if now is None else now
        with self._lock:
            return (
                len(self._recent(("user", username.lower()), now)) >= self.per_user
                or len(self._recent(("addr", address), now)) >= self.per_address
            )

    def failed(self, username: str, address: str, now: float | None = None) -> None:
        """Count a failed attempt against both keys."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self._recent(("user", username.lower()), now).append(now)
            self._recent(("addr", address), now).append(now)
            self._sweep(now)

    def succeeded(self, username: str) -> None:
        """A correct password clears the user's failures (not the address's)."""
        with self._lock:
            self._failures.pop(("user", username.lower()), None)
