"""``python -m partnercast`` runs the CLI."""

from partnercast.core.cli import main

main()
