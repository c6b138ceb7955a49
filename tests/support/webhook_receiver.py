"""A webhook receiver on a real socket, for the outgoing webhooks' tests."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook


class Receiver:
    """A webhook receiver on a real socket: records what it got, answers 503 while down."""

    def __init__(self) -> None:
        self.got: list[tuple[dict[str, str], bytes]] = []
        self.up = True
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if not receiver.up:
                    self.send_response(503)
                    self.end_headers()
                    return
                receiver.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def verified(self, secret: str) -> list[dict[str, Any]]:
        """Every body, each checked with the standardwebhooks library's signature."""
        bodies = []
        for headers, body in self.got:
            stamp = datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC)
            expected = Webhook(secret).sign(headers["webhook-id"], stamp, body)
            assert headers["webhook-signature"] == expected
            bodies.append(json.loads(body) | {"_id": headers["webhook-id"]})
        return bodies
