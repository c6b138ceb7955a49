"""What every route may depend on: the application's engine and settings, and the
request's one instant (FastAPI dependencies, e.g. ``def route(engine: Engine, now: Now)``).

The application factory (:func:`partnercast.web.app.create_app`) puts the engine and the
settings on ``app.state``; nothing here opens a database or reads settings itself.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.engine import Engine as SqlEngine

from partnercast.core.settings import Settings as EngineSettings
from partnercast.plugins.web import Now, request_now


def get_engine(request: Request) -> SqlEngine:
    engine: SqlEngine = request.app.state.engine
    return engine


def get_settings(request: Request) -> EngineSettings:
    settings: EngineSettings = request.app.state.settings
    return settings


Engine = Annotated[SqlEngine, Depends(get_engine)]
Settings = Annotated[EngineSettings, Depends(get_settings)]

__all__ = ["Engine", "Now", "Settings", "get_engine", "get_settings", "request_now"]
