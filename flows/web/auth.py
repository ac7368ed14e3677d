"""Sessions, CSRF and login throttling for the workspace.

- The session is a signed cookie (itsdangerous, keyed by ``settings.secret_key``): user id,
  the user's session version, a per-session CSRF token and the issue time; HttpOnly,
  SameSite=Lax, expires after :data:`SESSION_SECONDS`. The user is re-read on every request
  and the cookie's version must be the user's current one: logout, a new password, a new role
  or disabling bump it, which ends every session of that user at once.
- Every state-changing request carries the session's CSRF token in a hidden ``csrf_token``
  field (or the ``X-CSRF-Token`` header); a missing or wrong token is a 403. The login form
  gets its own token bound to a short-lived pre-session cookie.
- Logins are slowed, never locked, in memory per (user name, client address) and per client
  address with exponential backoff (:class:`LoginThrottle`); the client address is the peer's,
  or the one ``X-Forwarded-For`` names when the peer is a trusted proxy (:func:`client_address`).
  One process serves the workspace, so the counters live with it and reset on restart, which
  is acceptable for a brute-force brake.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import threading
import time
from collections.abc import Callable
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
    version: int
    csrf: str
    issued: float


class Sessions:
    """Signs and reads the session and pre-login cookies."""

    def __init__(self, secret: str, *, secure: bool = False) -> None:
        self._session = URLSafeTimedSerializer(secret, salt="qunflow.session")
        self._prelogin = URLSafeTimedSerializer(secret, salt="qunflow.prelogin")
        self.secure = secure

    def issue(self, response: Response, user_id: int, version: int) -> SessionData:
        data = SessionData(
            user_id=user_id, version=version, csrf=secrets.token_urlsafe(24), issued=time.time()
        )
        value = self._session.dumps({"u": user_id, "v": version, "c": data.csrf, "t": data.issued})
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
            return SessionData(
                user_id=int(data["u"]),
                version=int(data["v"]),
                csrf=str(data["c"]),
                issued=float(data["t"]),
            )
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
# Backoff: this many failures are free, then each further attempt waits 1, 2, 4 … seconds
# after the latest one, up to the cap. Per (name, address) a person mistyping a few times is
# not slowed; per address the allowance is larger, since an office behind one NAT shares it.
PAIR_FREE = 5
ADDRESS_FREE = 20
BASE_DELAY = 1.0  # seconds
MAX_DELAY = 300.0  # seconds: 12 guesses an hour per address at worst, a person waits minutes
FORGET_SECONDS = 900.0  # a key with no failure for this long starts afresh


@dataclass
class _Backoff:
    failures: int
    last: float


class LoginThrottle:
    """Exponential backoff on failed logins per (user name, address) and per address.

    :meth:`admit` both checks and counts: an admitted attempt counts as a failure until
    :meth:`succeeded` says otherwise, so concurrent guesses cannot slip in between the check
    and the count. Nothing locks a name: the right password from an address without recent
    failures for it is always admitted, whatever an attacker elsewhere does.
    """

    def __init__(
        self,
        *,
        pair_free: int = PAIR_FREE,
        address_free: int = ADDRESS_FREE,
        base_delay: float = BASE_DELAY,
        max_delay: float = MAX_DELAY,
        forget_seconds: float = FORGET_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pair_free, self.address_free = pair_free, address_free
        self.base_delay, self.max_delay = base_delay, max_delay
        self.forget = forget_seconds
        self.clock = clock
        self._keys: dict[tuple[str, ...], _Backoff] = {}
        self._sweep_at = SWEEP_MIN
        self._lock = threading.Lock()

    def _wait(self, key: tuple[str, ...], free: int, now: float) -> float:
        entry = self._keys.get(key)
        if entry is None or entry.last <= now - self.forget:
            return 0.0
        if entry.failures < free:
            return 0.0
        delay = min(self.max_delay, self.base_delay * 2.0 ** min(entry.failures - free, 64))
        return max(0.0, entry.last + delay - now)

    def _count(self, key: tuple[str, ...], now: float) -> None:
        entry = self._keys.get(key)
        if entry is None or entry.last <= now - self.forget:
            self._keys[key] = _Backoff(failures=1, last=now)
        else:
            entry.failures += 1
            entry.last = now

    def _sweep(self, now: float) -> None:
        # Keys whose latest failure is older than the forget time are dropped, so a spray of
        # made-up names cannot grow the table without bound; swept when it doubles.
        if len(self._keys) < self._sweep_at:
            return
        cutoff = now - self.forget
        self._keys = {k: v for k, v in self._keys.items() if v.last > cutoff}
        self._sweep_at = max(SWEEP_MIN, 2 * len(self._keys))

    def admit(self, username: str, address: str, now: float | None = None) -> float:
        """0 when the attempt may go ahead (and is counted), else the seconds still to wait."""
        now = self.clock() if now is None else now
        pair, addr = ("pair", username.lower(), address), ("addr", address)
        with self._lock:
            wait = max(
                self._wait(pair, self.pair_free, now), self._wait(addr, self.address_free, now)
            )
            if wait > 0:
                return wait
            self._count(pair, now)
            self._count(addr, now)
            self._sweep(now)
            return 0.0

    def succeeded(self, username: str, address: str) -> None:
        """A correct password: the pair starts afresh and the address gets its attempt back."""
        with self._lock:
            self._keys.pop(("pair", username.lower(), address), None)
            entry = self._keys.get(("addr", address))
            if entry is not None:
                entry.failures = max(0, entry.failures - 1)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(spec: str) -> tuple[Network, ...]:
    """Comma-separated IPs or CIDRs; ValueError naming the first that is neither."""
    out = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            out.append(ipaddress.ip_network(part, strict=False))
        except ValueError as exc:
            raise ValueError(f"not an IP address or CIDR: {part!r}") from exc
    return tuple(out)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _trusted(text: str, proxies: tuple[Network, ...]) -> bool:
    ip = _ip(text)
    return ip is not None and any(ip in net for net in proxies)


def client_address(
    peer: str | None, forwarded_for: str | None, proxies: tuple[Network, ...]
) -> str:
    """The client's address: the peer's, unless the peer is a trusted proxy.

    Behind trusted proxies, ``X-Forwarded-For`` is read from the right (the entry the nearest
    proxy appended) and the first address that is not itself a trusted proxy is the client;
    anything further left was written by the client and is not believed.
    """
    peer = peer or "unknown"
    if not forwarded_for or not _trusted(peer, proxies):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        ip = _ip(hop)
        if ip is None:
            return peer  # garbled header: the proxy itself is all we know
        if not any(ip in net for net in proxies):
            return str(ip)
    return str(_ip(hops[0])) if hops else peer
