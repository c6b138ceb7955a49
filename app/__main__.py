"""``python -m partnercast`` runs the CLI."""

from partnercast.cli import main

main()
