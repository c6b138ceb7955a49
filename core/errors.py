"""The error hierarchy.

``UserError`` is the one "handled" error: the CLI prints it as one short line (what went
wrong and where) and exits non-zero, without a traceback. Everything else is a bug and
keeps its traceback.
"""

from __future__ import annotations


class PartnercastError(Exception):
    """Base of every error the engine raises on purpose."""


class UserError(PartnercastError):
    """A mistake in the user's input: printed as one line, exit code 1 (or ``exit_code``)."""

    exit_code = 1

    def __init__(self, message: str, *, where: str | None = None) -> None:
        self.message = message
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


class NotFound(UserError):
    """A named row does not exist, or belongs to another tenant (the two look the same)."""


class Problems(UserError):
    """Several independent problems found in one input, each with its own location."""

    def __init__(self, problems: list[str], *, subject: str) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"{count} {noun} in {subject}:\n  " + "\n  ".join(self.problems))


class TenantScopeError(PartnercastError):
    """A query or write touched tenant-owned rows without (or outside) a tenant scope.

    This is a programming error, never a user error: the scoped session fails closed
    instead of returning or changing another tenant's rows.
    """


class TemplateError(UserError):
    """A template could not be rendered (syntax, sandbox violation, budget exceeded)."""

    retryable = False
    """True when another attempt may succeed (the render ran out of CPU time or memory on
    a loaded machine): a dispatch retries it a bounded number of times instead of failing."""
