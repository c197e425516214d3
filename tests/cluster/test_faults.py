"""Outages under a three-instance cluster (issue #6, item 4).

Each test starts its own cluster (its own Redis; its own PostgreSQL server where
the test stops it) and breaks one thing while talking to every instance:

- Redis stopped: a cached answer may stand for the staleness bound, then cookie
  sessions and strict-mode bearer tokens get 503 ``store_unavailable`` - never a
  500, never a 200. Redis back (append-only file): service resumes without
  restarting keyturn, the old session is still valid, and fan-out works again.
- PostgreSQL stopped (``pg_ctl stop -m fast``) and started again: whatever needs
  it gets 503, never 500, and everything works again afterwards.
- ``kill -9`` of an instance in the middle of sign-ups, sign-ins and refreshes:
  nothing that was acknowledged is lost, nothing half-done is corrupt, the
  survivors never answer 5xx, and the killed instance starts again cleanly.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial

import httpx
import pytest
from tests.cluster.harness import (
    LAG_LIMIT,
    STALENESS_BOUND,
    Api,
    Bearer,
    Credential,
    MakeCluster,
    Probe,
    TokenPair,
    apis,
    assert_store_unavailable,
    measure_refusal,
    token_pair,
    unique_email,
    wait_healthy,
)
from tests.cluster.lagreport import record
from tests.live import LiveServer

from keyturn.settings import Settings

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

#: Seconds past the staleness bound by which every instance must refuse (detecting
#: a lost connection and the request itself take a moment on a loaded machine).
OUTAGE_MARGIN = 1.0

#: Seconds an instance may take to serve again once the store is back.
RECOVERY_TIMEOUT = 20.0

#: Failed sign-ins after which an account is throttled (keyturn's default).
ACCOUNT_FAILURE_LIMIT = int(Settings.model_fields["login_max_account_failures"].default)

#: Per-request timeout during outages: a store outage must never hang a request.
OUTAGE_REQUEST_TIMEOUT = 5.0


def _deadline_loop(seconds: float, pause: float = 0.05) -> Iterator[float]:
    """Yield the monotonic time, every ``pause`` seconds, for ``seconds``."""
    end = time.monotonic() + seconds
    while (now := time.monotonic()) < end:
        yield now
        time.sleep(pause)


def _status(response: httpx.Response, *allowed: int) -> int:
    """The status of ``response``, which must be one of ``allowed``; a 503 must be
    ``store_unavailable``."""
    assert response.status_code in allowed, (
        f"{response.request.method} {response.request.url.path}: "
        f"{response.status_code} {response.text}"
    )
    if response.status_code == 503:
        assert_store_unavailable(response)
    return response.status_code


def _wait_until_served(
    call: Callable[[], httpx.Response], *, what: str, timeout: float = RECOVERY_TIMEOUT
) -> httpx.Response:
    """Repeat ``call`` until it answers 2xx; meanwhile only 503 ``store_unavailable``."""
    last: httpx.Response | None = None
    for _ in _deadline_loop(timeout, pause=0.1):
        last = call()
        if _status(last, 200, 201, 204, 503) != 503:
            return last
    raise AssertionError(f"{what} still unavailable {timeout:g} s after the store came back")


def _refused_for_the_outage(sign_in: httpx.Response) -> None:
    """A sign-in during an outage is 503 - and is no failed sign-in, so retrying
    it never locks the account (SPEC: only failed sign-ins count)."""
    assert sign_in.status_code != 429, (
        "sign-ins refused for the outage were counted as failed sign-ins: "
        f"{sign_in.status_code} {sign_in.text}"
    )
    assert_store_unavailable(sign_in)


# --- Redis ---------------------------------------------------------------------------


def test_redis_outage_fails_closed_then_recovers_without_a_restart(
    make_cluster: MakeCluster,
) -> None:
    """Redis down: sessions and strict bearer tokens get 503 on every instance once
    past the staleness bound (never 500 or 200 after it), so does sign-in; Redis
    back: the same session and token work again on all three - on C, which never
    saw them before, straight from Redis's append-only file - and a new sign-out
    fans out again, all without restarting keyturn."""
    cluster = make_cluster()
    with apis(*cluster.instances) as clients:
        a, b, c = clients
        email = a.register()
        session = a.login(email)
        pair = a.grant(email)
        credentials: list[Credential] = [session, pair.bearer]
        for api in (a, b):  # C stays cold: nothing of this user in its caches
            for credential in credentials:
                assert api.whoami(credential).status_code == 200

        for api in clients:
            api.http.timeout = httpx.Timeout(OUTAGE_REQUEST_TIMEOUT)
        cluster.redis.stop()
        must_refuse_from = time.monotonic() + STALENESS_BOUND + OUTAGE_MARGIN
        late: list[str] = []
        refused = 0
        for _ in _deadline_loop(STALENESS_BOUND + OUTAGE_MARGIN + 1.5):
            for api in clients:
                for credential in credentials:
                    response = api.whoami(credential)
                    status = _status(response, 200, 503)
                    refused += status == 503
                    if status == 200 and time.monotonic() > must_refuse_from:
                        late.append(f"{api.instance.url} {type(credential).__name__}")
        assert not late, f"accepted after the staleness bound with Redis down: {late}"
        assert refused, "no request was refused while Redis was down"
        for api in clients:
            assert_store_unavailable(api.login_response(email))
            assert_store_unavailable(api.http.get("/healthz"))

        cluster.redis.start()
        for api in (c, a, b):  # C first: what it accepts, it read from Redis
            for credential in credentials:
                served = _wait_until_served(
                    partial(api.whoami, credential), what=f"whoami on {api.instance.url}"
                )
                assert served.json()["sub"] == session.user_id
            wait_healthy(api.instance)

        # Fan-out is back once the instances have re-subscribed (they retry with
        # a back-off, trusting caches no longer than the plain staleness bound
        # meanwhile): from then on, every sign-out on B reaches A and C at once.
        resumed_by = time.monotonic() + 2 * STALENESS_BOUND + OUTAGE_MARGIN
        seen: list[float] = []
        while max(seen, default=LAG_LIMIT) >= LAG_LIMIT:
            assert time.monotonic() < resumed_by, f"fan-out did not resume: lags {seen}"
            seen = _sign_out_lags(b, email, cluster.a, cluster.c)
        lags = [lag for _ in range(3) for lag in _sign_out_lags(b, email, cluster.a, cluster.c)]
        record("sign-out-after-redis-restart", lags)
        assert max(lags) < LAG_LIMIT, f"fan-out after Redis came back is slow: {lags}"
        for api in clients:
            assert api.whoami(session).status_code == 200


def _sign_out_lags(api: Api, email: str, *others: LiveServer) -> list[float]:
    """Sign in and out on ``api``'s instance; how long ``others`` took to refuse."""
    session = api.login(email)
    probes = [Probe(other.workdir.name, other, session) for other in others]
    sign_out = partial(api.logout, session)
    return list(measure_refusal(probes, partial(_expect_status, sign_out, 204)).values())


def _expect_status(call: Callable[[], httpx.Response], status: int) -> None:
    response = call()
    assert response.status_code == status, f"{response.status_code} {response.text}"


# --- PostgreSQL ----------------------------------------------------------------------


def test_postgres_restart_gives_503_never_500_and_recovers(make_cluster: MakeCluster) -> None:
    """PostgreSQL stopped: sign-up, sign-in and both grants get 503 on every
    instance (never 500; sign-ins retried past the throttle limit are no failed
    sign-ins), /healthz says 503; started again on the same data: every instance
    serves them again, the retrying user included, and a refresh token from
    before the outage works."""
    cluster = make_cluster(private_postgres=True)
    with apis(*cluster.instances) as clients:
        a, b, c = clients
        email = a.register()
        session = a.login(email)
        pair = a.grant(email)

        for api in clients:
            api.http.timeout = httpx.Timeout(OUTAGE_REQUEST_TIMEOUT)
        cluster.postgres.stop_server()
        for attempt in range(ACCOUNT_FAILURE_LIMIT + 1):  # one user retrying, past the limit
            _refused_for_the_outage(clients[attempt % 3].login_response(email))
        for _ in _deadline_loop(STALENESS_BOUND + OUTAGE_MARGIN):
            for api in clients:
                assert_store_unavailable(api.register_response(unique_email()))
                _refused_for_the_outage(api.login_response(email))
                _refused_for_the_outage(api.grant_response(email))
                assert_store_unavailable(api.refresh_response(pair.refresh_token))
                assert_store_unavailable(api.http.get("/healthz"))
                _status(api.whoami(session), 200, 503)
                _status(api.whoami(pair.bearer), 200, 503)

        cluster.postgres.start_server()
        for api in clients:
            _wait_until_served(
                partial(api.login_response, email), what=f"sign-in on {api.instance.url}"
            )
            wait_healthy(api.instance)
        rotated = _wait_until_served(
            partial(b.refresh_response, pair.refresh_token), what="refresh"
        ).json()
        for api in clients:
            assert api.whoami(session).status_code == 200
            assert api.whoami(Bearer(rotated["access_token"])).status_code == 200
        assert c.register_response(unique_email()).status_code == 201
        assert a.refresh_response(rotated["refresh_token"]).status_code == 200


# --- kill -9 -------------------------------------------------------------------------


@dataclass
class Family:
    """A refresh family a burst thread owns: its user, its newest pair, and whether
    a refresh was in flight when the instance died (its outcome unknown)."""

    email: str
    latest: TokenPair
    in_doubt: bool = False


@dataclass
class Burst:
    """What the clients of the killed instance were told, and what went wrong."""

    registered: list[str] = field(default_factory=list)
    accounts_in_doubt: list[str] = field(default_factory=list)
    families: list[Family] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    survivor_answers: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ok(self, response: httpx.Response, expected: int) -> bool:
        """Whether ``response`` has the ``expected`` status; if not, note the problem."""
        if response.status_code == expected:
            return True
        with self.lock:
            self.problems.append(
                f"{response.request.url.host}:{response.request.url.port} "
                f"{response.request.url.path}: {response.status_code} {response.text[:200]}"
            )
        return False


def _new_family(api: Api) -> Family:
    email = api.register()
    return Family(email, api.grant(email))


def _sign_ups(api: Api, burst: Burst, stop: threading.Event) -> None:
    """Register, then take a refresh family, until the instance dies."""
    while not stop.is_set():
        email = unique_email("burst")
        try:
            registered = api.register_response(email)
        except httpx.TransportError:
            burst.accounts_in_doubt.append(email)
            return
        if not burst.ok(registered, 201):
            return
        burst.registered.append(email)
        try:
            granted = api.grant_response(email)
        except httpx.TransportError:
            return
        if not burst.ok(granted, 200):
            return
        burst.families.append(Family(email, token_pair(granted)))


def _refreshes(api: Api, family: Family, burst: Burst, stop: threading.Event) -> None:
    """Refresh one family, and sign its user in, over and over until the instance dies."""
    while not stop.is_set():
        try:
            refreshed = api.refresh_response(family.latest.refresh_token)
        except httpx.TransportError:
            family.in_doubt = True
            return
        if not burst.ok(refreshed, 200):
            return
        family.latest = token_pair(refreshed)
        try:
            signed_in = api.login_response(family.email)
        except httpx.TransportError:
            return
        if not burst.ok(signed_in, 200):
            return


def _survivor(api: Api, family: Family, burst: Burst, stop: threading.Event) -> None:
    """Refresh and use one family on a surviving instance; each answer must be right."""
    while not stop.is_set():
        refreshed = api.refresh_response(family.latest.refresh_token)
        if not burst.ok(refreshed, 200):
            return
        family.latest = token_pair(refreshed)
        if not burst.ok(api.whoami(family.latest.bearer), 200):
            return
        with burst.lock:
            burst.survivor_answers += 2
        time.sleep(0.01)


def test_kill_9_mid_burst_loses_no_acknowledged_account_or_family(
    make_cluster: MakeCluster,
) -> None:
    """``kill -9`` of A while it registers, signs in and refreshes on 6 threads and
    B and C serve refreshes: every account A acknowledged can sign in on B, every
    family A handed out still refreshes on B (or, if a refresh was cut off mid-way,
    refreshes or is cleanly revoked), B and C never answer 5xx, ``keyturn migrate``
    finds nothing to do and A starts again and serves the same tokens."""
    cluster = make_cluster()
    burst = Burst()
    stop = threading.Event()
    with apis(cluster.a, cluster.b, cluster.c) as (setup_a, setup_b, setup_c):
        own = [_new_family(setup_a) for _ in range(3)]
        survivors = [(setup_b, _new_family(setup_b)), (setup_c, _new_family(setup_c))]
        burst_apis = [Api(cluster.a, timeout=10.0) for _ in range(6)]
        threads = [
            threading.Thread(target=_sign_ups, args=(burst_apis[i], burst, stop)) for i in range(3)
        ]
        threads += [
            threading.Thread(target=_refreshes, args=(burst_apis[3 + i], own[i], burst, stop))
            for i in range(3)
        ]
        threads += [
            threading.Thread(target=_survivor, args=(api, family, burst, stop))
            for api, family in survivors
        ]
        try:
            for thread in threads:
                thread.start()
            time.sleep(1.5)
            cluster.a.kill()
            time.sleep(1.5)  # the survivors go on serving
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)
            for api in burst_apis:
                api.close()

        assert not burst.problems, burst.problems
        assert burst.registered, "the burst registered nobody before the kill"
        assert burst.survivor_answers, "the survivors served nothing"

        for email in burst.registered:
            assert setup_b.grant_response(email).status_code == 200, f"{email} lost"
        for email in burst.accounts_in_doubt:
            signed_in = setup_b.grant_response(email).status_code
            assert signed_in in (200, 400), f"{email}: {signed_in}"
            again = setup_c.register_response(email).status_code
            assert again == (409 if signed_in == 200 else 201), (email, signed_in, again)

        for family in [*burst.families, *own]:
            response = setup_b.refresh_response(family.latest.refresh_token)
            if family.in_doubt:
                assert response.status_code in (200, 400), response.text
                if response.status_code == 400:
                    assert response.json()["error"] == "invalid_grant"
                    continue
            else:
                assert response.status_code == 200, f"family lost or corrupt: {response.text}"
            family.latest = token_pair(response)
            assert setup_c.whoami(family.latest.bearer).status_code == 200

    migrated = cluster.cli("migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert "up to date" in " ".join(migrated.stdout.split())
    cluster.a.start()
    wait_healthy(cluster.a)
    assert "Traceback" not in cluster.a.stderr, cluster.a.stderr
    with Api(cluster.a) as restarted:
        family = burst.families[0] if burst.families else own[0]
        assert restarted.whoami(family.latest.bearer).status_code == 200
        assert restarted.refresh_response(family.latest.refresh_token).status_code == 200
        assert restarted.login_response(burst.registered[0]).status_code == 200
