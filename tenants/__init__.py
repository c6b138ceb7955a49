"""Tenants, partners, contacts, suppressions and segments."""
