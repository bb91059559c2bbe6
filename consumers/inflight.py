"""A batch in flight: its rules are done, its last writes and its commit go on while the
worker starts on the next batch (``domain.engine.overlap``).

The worker keeps at most two: the one being written and committed, and the next one, which
applies what shares nothing with it and waits for its commit before the rest
(``engine.batch.Flow``). The next one's rules are done only after that commit, so a third
never starts beside an uncommitted first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import asyncpg

from consumers.pipeline import Counts, RecordLike, apply_records
from domain.engine.batch import Flow
from domain.engine.overlap import BatchKeys, PreviousFailed

_WHOLE = BatchKeys(exclusive=True)


class InFlight:
    """One batch being applied (``apply_records`` in a task), as the batch after it sees it."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        records: Sequence[RecordLike],
        previous: InFlight | None,
        *,
        overlap: bool = True,
    ) -> None:
        self.records = tuple(records)
        self._keys: BatchKeys | None = None
        self._decided: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        flow = Flow(previous, self._on_decided) if overlap else None
        self.task: asyncio.Task[Counts] = asyncio.ensure_future(
            apply_records(pool, self.records, flow=flow)
        )

    def _on_decided(self, keys: BatchKeys) -> None:
        self._keys = keys
        if not self._decided.done():
            self._decided.set_result(None)

    @property
    def keys(self) -> BatchKeys:
        """What the batch names and holds, once its rules are done. A batch that ended
        without that step (dead letters only, applied one by one) is over by the time the
        next one reads this: everything may wait for it, at no cost."""
        return self._keys if self._keys is not None else _WHOLE

    async def decided(self) -> None:
        """Return once the rules are done and the batch before committed, or once the whole
        batch is; raise its error if it failed first."""
        await asyncio.wait((self._decided, self.task), return_when=asyncio.FIRST_COMPLETED)
        if self.task.done():
            self.task.result()

    async def committed(self) -> None:
        """Return once committed; raise ``PreviousFailed`` if the batch failed."""
        try:
            await asyncio.shield(self.task)
        except Exception as exc:
            raise PreviousFailed(f"the batch before failed: {type(exc).__name__}") from exc

    def failed(self) -> BaseException | None:
        """Its error, if it ended with one."""
        if not self.task.done() or self.task.cancelled():
            return None
        return self.task.exception()
