"""A brake on sign-ups through the public QR form: per code and per client address.

Sliding windows kept in memory by the one web process (reset on restart, which is fine for a
brake). Only sign-ups that passed the form's checks count, so someone fixing a typo does not
use up the allowance. A refused person keeps the filled-in form and sends it again later.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass

WINDOW_SECONDS = 60.0
# One code at a stand or on a talk's slide: people take about a minute to fill the form, so
# even a room scanning at once spreads out; 30 a minute is one every two seconds per code,
# while a script through a leaked code is held to that pace.
SIGNUPS_PER_CODE = 30
# One phone sends its own sign-up and perhaps a friend's; venue Wi-Fi and carrier NAT put
# several phones behind one address, so 10 a minute leaves them room (a flood stops at 10).
SIGNUPS_PER_ADDRESS = 10
_SWEEP_MIN = 4096  # keys kept before the first sweep


@dataclass(frozen=True)
class Admission:
    """Whether a sign-up may be stored now, and if not, in how many seconds to retry."""

    ok: bool
    retry_after: int = 0


class SignupThrottle:
    """Sliding-window limits on sign-ups per code and per client address."""

    def __init__(
        self,
        *,
        per_code: int = SIGNUPS_PER_CODE,
        per_address: int = SIGNUPS_PER_ADDRESS,
        window_seconds: float = WINDOW_SECONDS,
    ) -> None:
        self.per_code = per_code
        self.per_address = per_address
        self.window = window_seconds
        self._hits: dict[tuple[str, str], deque[float]] = {}
        self._sweep_at = _SWEEP_MIN
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        return hits

    def _sweep(self, now: float) -> None:
        # Keys whose hits all slid out are forgotten, so a spray of addresses cannot grow the
        # table without bound; swept when it doubled since the last time.
        if len(self._hits) < self._sweep_at:
            return
        cutoff = now - self.window
        self._hits = {k: v for k, v in self._hits.items() if v and v[-1] > cutoff}
        self._sweep_at = max(_SWEEP_MIN, 2 * len(self._hits))

    def admit(self, code_id: str, address: str, now: float | None = None) -> Admission:
        """Count a sign-up through ``code_id`` from ``address`` if both are under their limit."""
        now = time.monotonic() if now is None else now
        with self._lock:
            by_code = self._recent(("code", code_id), now)
            by_address = self._recent(("addr", address), now)
            full = [
                hits[0]
                for hits, limit in ((by_code, self.per_code), (by_address, self.per_address))
                if len(hits) >= limit
            ]
            if full:
                wait = max(oldest + self.window - now for oldest in full)
                return Admission(False, max(1, math.ceil(wait)))
            by_code.append(now)
            by_address.append(now)
            self._sweep(now)
            return Admission(True)
