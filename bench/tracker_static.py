"""A static answer for bench/tracker_load.py's load generator ceiling: the pixel, from a
bare ASGI application served by uvicorn as ``partnercast serve`` serves the engine
(httptools, uvloop), so the ceiling is what the generator and the server stack can do on
this machine with no tracker work at all.

    python -m uvicorn --app-dir bench tracker_static:app --port PORT --http httptools
"""

from __future__ import annotations

import base64
from typing import Any

GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
HEADERS = [(b"content-type", b"image/gif"), (b"content-length", str(len(GIF)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": GIF})
