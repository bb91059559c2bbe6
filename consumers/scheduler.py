"""The expiry scheduler: one ``expiry.run_requested`` per day at a configured local time.

Every worker runs one. The event id is derived from the date, so however many schedulers
publish on a given day, the inbox applies the run once.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from faststream.kafka import KafkaBroker

from core.logs import get_logger
from core.settings import Settings
from streams.inputs import ExpiryRunRequested
from streams.topics import Topic

log = get_logger(__name__)

_NAMESPACE = uuid.UUID("6f1c1d2e-0f54-4b8e-9a55-0d5c3f1e7a11")


def expiry_event(day: date, run_at: time, tz: ZoneInfo) -> ExpiryRunRequested:
    """The day's run: its id depends on the date only."""
    return ExpiryRunRequested(
        event_id=uuid.uuid5(_NAMESPACE, f"expiry:{day.isoformat()}"),
        type="expiry.run_requested",
        occurred_at=datetime.combine(day, run_at, tzinfo=tz),
    )


def next_run(now: datetime, run_at: time, tz: ZoneInfo) -> datetime:
    """The next instant at ``run_at`` local time, strictly after ``now``."""
    local = now.astimezone(tz)
    candidate = datetime.combine(local.date(), run_at, tzinfo=tz)
    if candidate <= local:
        candidate = datetime.combine(local.date() + timedelta(days=1), run_at, tzinfo=tz)
    return candidate


async def run_expiry_scheduler(settings: Settings, broker: KafkaBroker) -> None:
    """Sleep until the next run time, publish the day's run, repeat until cancelled."""
    tz = ZoneInfo(settings.expiry_timezone)
    run_at = time.fromisoformat(settings.expiry_local_time)
    while True:
        when = next_run(datetime.now(tz), run_at, tz)
        await asyncio.sleep(max(0.0, (when - datetime.now(tz)).total_seconds()))
        event = expiry_event(when.date(), run_at, tz)
        await broker.publish(event.to_json(), topic=Topic.EXPIRY.value, key=b"all", headers={})
        log.info("expiry_run_published", day=when.date().isoformat())
