"""``python -m bench.replay_run ISO``: one replay of ``loyalty.purchases.v1`` from a time.

The replay goes through ``consumers.replay`` (what ``loyalty replay --from-datetime`` runs),
in a process of its own like the worker, and prints the replay's report as one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime

from consumers.replay import From, replay
from core.logs import configure_logging
from core.settings import get_settings
from streams.topics import Topic


def main() -> None:
    """Replay from the instant in ``argv[1]`` to the topic's current end."""
    at = datetime.fromisoformat(sys.argv[1])
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    report = asyncio.run(replay(settings, [Topic.PURCHASES], From(at=at)))
    print(json.dumps(report.as_dict()), flush=True)


if __name__ == "__main__":
    main()
