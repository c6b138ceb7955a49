"""Helpers shared by test modules (tests/ is on sys.path through pytest's pythonpath)."""
