"""Worker heartbeats: which workers are alive, and SQLite's one-worker rule."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel


class WorkerHeartbeat(SQLModel, table=True):
    """One running worker (system-level: a worker serves every tenant)."""

    __tablename__ = "worker_heartbeat"

    worker_id: str = Field(primary_key=True, max_length=128)
    host: str = Field(max_length=255)
    pid: int
    started_at: datetime
    last_seen: datetime
