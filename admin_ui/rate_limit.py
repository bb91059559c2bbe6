"""A sliding-window rate limit for the public forms (self-enrolment, terminal pairing).

In the admin process's memory: the panel runs as one process, and a limit that forgets on a
restart still stops probing at any useful speed. Keys are hashed so the table never holds an
email or an address in clear, and it is bounded: the stalest keys go first.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict, deque
from collections.abc import Callable


class RateLimit:
    """At most ``limit`` hits per key within ``window_s`` seconds."""

    def __init__(
        self,
        limit: int,
        window_s: float,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_keys = max_keys
        self.clock = clock
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()

    @staticmethod
    def _key(key: str) -> str:
        return hashlib.sha256(key.encode("utf-8")).hexdigest()

    def _window(self, key: str, now: float) -> deque[float]:
        hits = self._hits.get(key)
        if hits is None:
            hits = deque()
            self._hits[key] = hits
            while len(self._hits) > self.max_keys:
                self._hits.popitem(last=False)
        else:
            self._hits.move_to_end(key)
        while hits and hits[0] <= now - self.window_s:
            hits.popleft()
        return hits

    def allowed(self, key: str) -> bool:
        """Whether one more hit of ``key`` is within the limit (it is not counted)."""
        return len(self._window(self._key(key), self.clock())) < self.limit

    def hit(self, key: str) -> bool:
        """Count a hit of ``key``; False when it is over the limit (then it is not counted)."""
        now = self.clock()
        hits = self._window(self._key(key), now)
        if len(hits) >= self.limit:
            return False
        hits.append(now)
        return True
