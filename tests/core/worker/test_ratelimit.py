"""Token buckets in the database: refill, take, give back, tenants, and workers racing."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import pytest
from conftest import make_tenant
from sqlalchemy.engine import Engine
from sqlmodel import select

from partnercast.campaigns.throttle import allowance
from partnercast.core.ratelimit import (
    Limit,
    ProviderBucket,
    RateBucket,
    acquire,
    give_back,
    limits_from,
    taken_recently,
)
from partnercast.core.settings import Settings
from partnercast.core.tenancy import system_session, tenant_session
from partnercast.plugins.channel import Channel

T0 = 1_800_000_000.0  # a fixed instant on the minute


def test_a_new_bucket_is_full_then_refills_at_its_rate(any_engine: Engine) -> None:
    tenant = make_tenant(any_engine, "acme")
    grant = acquire(any_engine, "smtp", 40, T0, 0.5, 30, tenant_id=tenant)
    assert grant.granted == 30
    assert grant.wait_seconds == pytest.approx(20.0)  # 10 more at 0.5/s
    assert acquire(any_engine, "smtp", 5, T0 + 1, 0.5, 30, tenant_id=tenant).granted == 0
    later = acquire(any_engine, "smtp", 5, T0 + 10, 0.5, 30, tenant_id=tenant)
    assert later.granted == 5 and later.wait_seconds == 0.0
    # An hour on, the bucket is full again, never more than its burst.
    assert acquire(any_engine, "smtp", 100, T0 + 3600, 0.5, 30, tenant_id=tenant).granted == 30


def test_a_clock_behind_adds_nothing_and_a_changed_limit_applies(any_engine: Engine) -> None:
    tenant = make_tenant(any_engine, "acme")
    acquire(any_engine, "x", 10, T0, 1, 10, tenant_id=tenant)
    assert acquire(any_engine, "x", 1, T0 - 500, 1, 10, tenant_id=tenant).granted == 0
    # The partner lowers the burst to 3: a full bucket holds 3 from now on.
    assert acquire(any_engine, "x", 10, T0 + 100, 1, 3, tenant_id=tenant).granted == 3


def test_give_back_and_recent_takes(any_engine: Engine) -> None:
    tenant = make_tenant(any_engine, "acme")
    acquire(any_engine, "k", 8, T0 + 10, 0.1, 10, tenant_id=tenant)
    give_back(any_engine, "k", 3, T0 + 10, tenant_id=tenant)
    assert acquire(any_engine, "k", 10, T0 + 10, 0.1, 10, tenant_id=tenant).granted == 5
    with tenant_session(any_engine, tenant) as session:
        bucket = session.exec(select(RateBucket)).one()
    assert bucket.taken_total == 10
    minute, hour = taken_recently(bucket, T0 + 30)
    assert (minute, hour) == (10, 10)
    minute, hour = taken_recently(bucket, T0 + 90)  # half of the previous minute still counts
    assert minute == pytest.approx(5) and hour == 10
    assert taken_recently(bucket, T0 + 200) == (0, 10)


def test_buckets_are_per_tenant_and_provider_buckets_are_shared(any_engine: Engine) -> None:
    a, b = make_tenant(any_engine, "acme"), make_tenant(any_engine, "globex")
    assert acquire(any_engine, "same-key", 5, T0, 1, 5, tenant_id=a).granted == 5
    assert acquire(any_engine, "same-key", 5, T0, 1, 5, tenant_id=b).granted == 5
    with tenant_session(any_engine, a) as session:
        assert [r.tenant_id for r in session.exec(select(RateBucket)).all()] == [a]
    assert acquire(any_engine, "ads", 3, T0, 1, 4, tenant_id=None).granted == 3
    assert acquire(any_engine, "ads", 3, T0, 1, 4, tenant_id=None).granted == 1
    with system_session(any_engine, reason="tests read provider buckets") as session:
        assert session.exec(select(ProviderBucket.key)).all() == ["ads"]


def test_limits_from_account_fields_and_channel_declarations() -> None:
    assert limits_from({"rate_per_minute": 30, "rate_per_day": None, "host": "x"}) == [
        Limit(30, "per_minute")
    ]
    assert limits_from({"per_day": 300, "per_hour": 0}) == [Limit(300, "per_day")]
    assert str(Limit(300, "per_day")) == "300/day"
    assert Limit(30, "per_minute").rate == pytest.approx(0.5)


class _Limited(Channel):
    name = "limited"
    title = "Limited"
    rate_limits: ClassVar[dict[str, int]] = {"per_minute": 6}


def test_allowance_takes_from_account_and_provider_and_gives_back(any_engine: Engine) -> None:
    tenant = make_tenant(any_engine, "acme")
    settings = Settings(rate_limits={"limited": {"per_hour": 10}})
    now = datetime.fromtimestamp(T0, UTC)

    def ask(n: int, moment=now, account=None):  # type: ignore[no-untyped-def]
        return allowance(
            any_engine,
            settings,
            tenant_id=tenant,
            partner_id=7,
            channel=_Limited,
            account=account,
            n=n,
            now=moment,
        )

    first = ask(20)  # the channel's 6 a minute
    assert first.may_send == 6 and first.retry_at == now + timedelta(seconds=60)
    assert "per_minute" in first.limited_by
    # A minute on: 6 more by the account, but only 4 left of the provider's 10 an hour;
    # the 2 the account gave and the provider refused go back to the account's bucket.
    second = ask(6, now + timedelta(minutes=1))
    assert second.may_send == 4 and "provider" in second.limited_by
    with tenant_session(any_engine, tenant) as session:
        bucket = session.exec(select(RateBucket)).one()
    assert bucket.tokens == pytest.approx(2) and bucket.taken_total == 10
    assert bucket.key == "limited:partner:7:per_minute" and bucket.partner_id == 7
    # The partner's own limit on the account replaces the channel's default.
    own = ask(3, now + timedelta(hours=2), {"rate_per_minute": 1})
    assert own.may_send == 1
    assert ask(0).all and ask(0).may_send == 0


def test_no_limit_lets_everything_through(any_engine: Engine) -> None:
    class Free(_Limited):
        rate_limits: ClassVar[dict[str, int]] = {}

    tenant = make_tenant(any_engine, "acme")
    grant = allowance(
        any_engine,
        Settings(),
        tenant_id=tenant,
        partner_id=1,
        channel=Free,
        account=None,
        n=5000,
        now=datetime.now(UTC),
    )
    assert grant.may_send == 5000 and grant.all


@pytest.mark.parametrize("threads", [4])
def test_workers_hammering_one_bucket_never_exceed_it(any_engine: Engine, threads: int) -> None:
    """N threads, each its own connections, take from one bucket for 3 s: the total taken
    is at most burst + rate x elapsed, and close to it (nobody is starved by the locks)."""
    tenant = make_tenant(any_engine, "acme")
    rate, burst, duration = 40.0, 10.0, 3.0
    taken: list[int] = [0] * threads
    instants: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    go = threading.Barrier(threads)

    def hammer(index: int) -> None:
        try:
            go.wait()
            end = time.monotonic() + duration
            while time.monotonic() < end:
                now = time.time()
                grant = acquire(any_engine, "hot", 5, now, rate, burst, tenant_id=tenant)
                with lock:
                    instants.append(now)
                taken[index] += grant.granted
                if grant.granted < 5:
                    time.sleep(min(grant.wait_seconds, 0.02))
        except BaseException as error:
            errors.append(error)

    workers = [threading.Thread(target=hammer, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    elapsed = max(instants) - min(instants)
    ceiling = burst + rate * elapsed
    total = sum(taken)
    assert total <= ceiling + 1e-6, (total, ceiling)
    print(f"{threads} workers took {total} of at most {ceiling:.1f} in {elapsed:.2f} s")
    assert total >= 0.8 * ceiling, (total, ceiling)  # not starved
    assert all(count > 0 for count in taken)  # every worker got some
    with tenant_session(any_engine, tenant) as session:
        assert session.exec(select(RateBucket)).one().taken_total == total


TAKER = """
import sys, time
from partnercast.core.db import make_engine
import partnercast.models  # noqa: F401 - every table, for the foreign keys
from partnercast.core.ratelimit import acquire

url, tenant, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
engine = make_engine(url)
engine.connect().close()
print("ready", flush=True)
start = float(sys.stdin.readline())
while time.time() < start:
    time.sleep(0.005)
taken, first, last, calls = 0, None, None, 0
while time.time() < start + seconds:
    now = time.time()
    first, last = first or now, now
    grant = acquire(engine, "shared", 1, now, 10.0, 10, tenant_id=tenant)
    taken += grant.granted
    calls += 1
    if grant.granted < 1:
        time.sleep(min(grant.wait_seconds, 0.02))
print(taken, first, last, calls)
"""


def test_worker_processes_sharing_one_bucket_never_exceed_it(
    any_engine: Engine, tmp_path: Path
) -> None:
    """The same with 4 processes (as 4 workers on their own hosts would be)."""
    tenant = make_tenant(any_engine, "acme")
    script = tmp_path / "taker.py"
    script.write_text(TAKER)
    url = any_engine.url.render_as_string(hide_password=False)
    processes = [
        subprocess.Popen(
            [sys.executable, str(script), url, str(tenant), "3"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    for process in processes:  # every one has imported and connected: go together
        assert process.stdout is not None and process.stdout.readline() == "ready\n"
    start = time.time() + 0.2
    for process in processes:
        assert process.stdin is not None
        process.stdin.write(f"{start}\n")
        process.stdin.close()
    results = []
    for process in processes:
        assert process.stdout is not None and process.stderr is not None
        results.append((process.stdout.read(), process.stderr.read()))
        process.wait(timeout=60)
    assert [process.returncode for process in processes] == [0] * 4, results
    lines = [stdout.split() for stdout, _err in results]
    total = sum(int(line[0]) for line in lines)
    elapsed = max(float(line[2]) for line in lines) - min(float(line[1]) for line in lines)
    ceiling = 10 + 10.0 * elapsed
    calls = sum(int(line[3]) for line in lines)
    print(f"4 processes took {total} of at most {ceiling:.1f} in {elapsed:.2f} s, {calls} calls")
    assert total <= ceiling + 1e-6
    assert total >= 0.8 * ceiling  # not starved (the machine may be busy)
    # A token a call: about 40 grants between 4 processes, so that one left with none is
    # starved, not unlucky (at 5 tokens a call there were 8 grants, and on a loaded
    # machine a process could miss all 8 by the timing of its polls).
    assert all(int(line[0]) > 0 for line in lines)
