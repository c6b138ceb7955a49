"""The engine's core: settings, database and tenancy, the dispatch outbox, time, errors, CLI."""
