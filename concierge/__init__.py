"""Concierge work: tasks and the scan that derives them, capacity, readiness, weekly reviews."""
