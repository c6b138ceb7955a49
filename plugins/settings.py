"""Each plugin's own settings, namespaced, and what a channel is told about the engine.

A plugin declares ``register("smtp", SmtpSettings)`` in its ``register_settings`` hook.
The values come, each layer over the one before, from the model's defaults, the
``[smtp]`` table of ``partnercast.toml`` (or ``[partnercast.smtp]``), the environment
variables ``PARTNERCAST_SMTP_<FIELD>`` (``PARTNERCAST_SMTP_PORT=2525``; lists, dicts and
nested models as JSON), or, replacing all of those for the section, an explicit
``load_settings(smtp=...)`` of the caller. A channel gets them in the
:class:`PluginConfig` it is built with: ``self.settings.section("smtp", SmtpSettings)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class PluginConfig:
    """What a channel is built with: where the engine runs, and every plugin's section.

    ``environment`` is ``development`` or ``production``; ``public_base_url`` is the
    address the engine's web server is reached at (for links in messages and pages).
    Sections are validated models; their secrets (``SecretStr``) never show in repr.
    ``clock`` is the engine's clock, passed down from the edge (the worker's, or the
    instant ``tick(now)`` runs for): a channel reads it for anything it stamps with the
    time (an email's Date header), never the wall clock. None: the channel was built
    without one (a bare channel, in a test) and must not need it.
    """

    environment: str = "development"
    public_base_url: str = ""
    sections: Mapping[str, BaseModel] = field(default_factory=dict, repr=False)
    clock: Callable[[], datetime] | None = field(default=None, repr=False, compare=False)

    def section(self, namespace: str, model: type[M]) -> M:
        """The plugin's settings under ``namespace``, as its ``model``.

        A section that was not built (a channel constructed by hand, in a test) is the
        model's defaults.
        """
        value = self.sections.get(namespace)
        if value is None:
            return model()
        if not isinstance(value, model):
            raise TypeError(
                f"settings section {namespace!r} is a {type(value).__name__}, "
                f"not a {model.__name__}"
            )
        return value


__all__ = ["PluginConfig"]
