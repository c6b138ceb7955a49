"""Reading the JSON body of an HTTP API's answer, whatever the API put there."""

from __future__ import annotations

from typing import Any

import requests


def json_object(response: requests.Response) -> dict[str, Any]:
    """The body as a JSON object; {} when it is empty, not JSON, or not an object
    (an error page from a proxy, a 204): callers then read the status code instead."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
