"""The readers of bench/tracker_load.py, for locust (run headless by that script).

Each simulated reader takes the next message of the plan (``TRACKER_PLAN``, a JSON list
of messages, each a list of ``[method, path, user agent]``) and makes its requests in
order, as one mail client would (the pixel, then the clicks), then takes the next message;
when the plan is done, the last reader stops locust. Every request's start and end
(perf_counter) and any error go to ``TRACKER_RESULT`` (JSON) when locust quits.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from locust import FastHttpUser, constant, events, task
from locust.exception import StopUser

with open(os.environ["TRACKER_PLAN"], encoding="utf-8") as plan_file:
    PLAN: list[list[list[str]]] = json.load(plan_file)
_next = iter(range(len(PLAN)))
_busy = [0]
_samples: list[tuple[float, float]] = []
_errors: list[str] = []


class Reader(FastHttpUser):
    wait_time = constant(0)

    @task
    def read(self) -> None:
        index = next(_next, None)
        if index is None:
            if _busy[0] == 0:
                self.environment.runner.quit()  # type: ignore[union-attr]
            raise StopUser()
        _busy[0] += 1
        try:
            for method, path, agent in PLAN[index]:
                began = time.perf_counter()
                with self.client.request(
                    method,
                    path,
                    headers={"User-Agent": agent},
                    allow_redirects=False,
                    catch_response=True,
                    name=path.split("/", 3)[2] if path.startswith("/t/") else path,
                ) as response:
                    if response.status_code in (200, 302):
                        response.success()
                    else:
                        _errors.append(f"{response.status_code} {method} {path[:60]}")
                        response.failure(f"status {response.status_code}")
                _samples.append((began, time.perf_counter()))
        finally:
            _busy[0] -= 1


@events.quitting.add_listener
def _write(environment: Any, **_: Any) -> None:
    with open(os.environ["TRACKER_RESULT"], "w", encoding="utf-8") as out:
        json.dump({"samples": _samples, "errors": _errors, "planned": len(PLAN)}, out)
