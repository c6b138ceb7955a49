"""A command line mounts only the folder its command comes from (app/cli.py MOUNTS), and
the table of who mounts what is what each folder really mounts."""

from __future__ import annotations

import json
import subprocess
import sys

from partnercast.cli import MOUNTS

PROBE = """
import json
from partnercast import cli

seen, out = set(), {}
for mount in cli.MOUNTS:
    mount()
    infos = [*cli.app.registered_commands, *cli.app.registered_groups]
    names = {i.name or cli._callback_name(i.callback) for i in infos} - {"version", "init", "db"}
    out[mount.__name__] = sorted(names - seen)
    seen |= names
print(json.dumps(out))
"""


def test_the_table_says_what_each_folder_mounts() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    mounted = json.loads(done.stdout)
    assert mounted == {mount.__name__: sorted(names) for mount, names in MOUNTS.items()}


def test_a_command_mounts_only_its_folder() -> None:
    probe = (
        "import sys; from partnercast import cli; cli.build_app('tasks'); "
        "print(sorted(m for m in sys.modules if m.startswith('partnercast.')))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded = done.stdout
    assert "partnercast.concierge.cli" in loaded
    for other in ("partnercast.funnel.cli", "partnercast.campaigns.workflow_cli"):
        assert other not in loaded, other


def test_a_group_that_other_folders_extend_has_all_its_commands() -> None:
    """`partners link` (funnel) and `partners readiness` (concierge) live in another
    folder than `partners` (tenants): the real command line finds them."""
    for words in (["partners", "link", "--help"], ["partners", "readiness", "--help"]):
        done = subprocess.run(
            [sys.executable, "-m", "partnercast", *words], capture_output=True, text=True
        )
        assert done.returncode == 0, (words, done.stderr)
        assert "Usage: " in done.stdout and "No such command" not in done.stderr
