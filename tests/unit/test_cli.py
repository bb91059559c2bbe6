"""The command line imports only what the invoked command needs, and knows every command."""

from __future__ import annotations

import subprocess
import sys

import loyalty.cli as cli


def _registered() -> set[str]:
    names = {
        c.name or (c.callback.__name__ if c.callback else "") for c in cli.app.registered_commands
    }
    names |= {g.name or "" for g in cli.app.registered_groups}
    return {n.replace("_", "-") for n in names}


def test_every_registered_command_is_in_the_table() -> None:
    cli._register([])
    assert _registered() == set(cli.COMMAND_MODULES)


def test_running_the_worker_does_not_import_the_admin_panel_or_alembic() -> None:
    heavy = "('nicegui', 'alembic', 'loyalty.cli.admin_cmd')"
    probe = (
        "import sys, loyalty.cli as c; c._register(['worker']);"
        f"print(sorted(m for m in {heavy} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
