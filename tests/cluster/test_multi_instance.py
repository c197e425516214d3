"""Three ``keyturn serve`` processes on one PostgreSQL and one Redis (issue #6, item 3).

A credential issued by one instance is accepted by the others, and a revocation
on one is refused by the others within the fan-out bound. Each revocation test
measures the lag - from the revoking response on one instance until another
answers 401 - over many revocations, while the other instances hold the
credential in their caches (see ``measure_refusal``); the lags go to the run's
report (``lagreport.py``). Each lag must stay under ``LAG_LIMIT`` (1 s), half the
2 s staleness bound: cache expiry alone would fail such a run, fan-out passes it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from functools import partial

import httpx
import pytest
from tests.cluster.harness import (
    LAG_LIMIT,
    REFRESH_GRACE,
    STALENESS_BOUND,
    Api,
    Bearer,
    Cluster,
    Probe,
    apis,
    measure_refusal,
)
from tests.cluster.lagreport import record

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def check_lags(kind: str, lags: list[float]) -> None:
    """Record the lags of ``kind`` in the run's report, then hold each to the limit."""
    stats = record(kind, lags, limit_ms=LAG_LIMIT * 1000, staleness_bound_s=STALENESS_BOUND)
    slow = [round(lag, 3) for lag in lags if lag >= LAG_LIMIT]
    assert not slow, (
        f"{kind}: {len(slow)} of {len(lags)} refusals took >= {LAG_LIMIT} s: {slow} ({stats})"
    )


# --- a credential from one instance is good on every instance -------------------------


def test_session_from_one_instance_is_accepted_by_the_others(cluster: Cluster) -> None:
    """A session cookie and CSRF token from A work on B and C (whoami, and a
    CSRF-protected POST /auth/token), and every instance lists the same sign-in."""
    with apis(*cluster.instances) as (a, b, c):
        email = a.register()
        session = a.login(email)
        for api in (b, c):
            response = api.whoami(session)
            assert response.status_code == 200, response.text
            body = response.json()
            assert (body["sub"], body["email"], body["via"]) == (session.user_id, email, "session")
            minted = api.http.post("/auth/token", headers=session.headers(unsafe=True))
            assert minted.status_code == 200, minted.text
            token = minted.json()["access_token"]
            for other in (a, b, c):
                assert other.http.get("/auth/whoami", headers=_bearer(token)).status_code == 200
            listed = api.http.get("/auth/sessions", headers=session.headers())
            assert listed.status_code == 200, listed.text
            assert [row["current"] for row in listed.json() if row["kind"] == "browser"] == [True]


def test_token_from_one_instance_verifies_on_the_others(cluster: Cluster) -> None:
    """An access token from A verifies on B and C, all three publish the same JWKS,
    and A's refresh token rotates on B into a pair that C accepts."""
    with apis(*cluster.instances) as (a, b, c):
        jwks = [api.http.get("/.well-known/jwks.json").json() for api in (a, b, c)]
        assert jwks[0] == jwks[1] == jwks[2]
        assert jwks[0]["keys"]
        email = a.register()
        pair = a.grant(email)
        for api in (b, c):
            response = api.whoami(pair.bearer)
            assert response.status_code == 200, response.text
            assert (response.json()["email"], response.json()["via"]) == (email, "token")
        rotated = b.refresh(pair.refresh_token)
        assert c.whoami(rotated.bearer).status_code == 200
        assert a.refresh(rotated.refresh_token).access_token != rotated.access_token


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def expecting(
    status: int, call: Callable[[], httpx.Response], error: str | None = None
) -> Callable[[], None]:
    """``call`` as a revocation step that must answer ``status`` (and ``error``)."""

    def step() -> None:
        response = call()
        assert response.status_code == status, f"{response.status_code} {response.text}"
        if error is not None:
            assert response.json()["error"] == error, response.text

    return step


def disable(cluster: Cluster, email: str) -> None:
    """``keyturn user disable EMAIL`` as an operator runs it; must succeed."""
    result = cluster.cli("user", "disable", email)
    assert result.returncode == 0, result.stderr


# --- a revocation on one instance is refused by the others, fast -----------------------


@pytest.mark.slow
def test_sign_out_on_one_instance_is_refused_by_the_others(cluster: Cluster) -> None:
    """POST /auth/logout on A: the session is refused on B and C within the bound
    (20 sign-outs), and on A at once."""
    lags: list[float] = []
    with Api(cluster.a) as a:
        email = a.register()
        for _ in range(20):
            session = a.login(email)
            probes = [Probe("b", cluster.b, session), Probe("c", cluster.c, session)]

            lags += measure_refusal(probes, expecting(204, partial(a.logout, session))).values()
            assert a.whoami(session).status_code == 401
    check_lags("sign-out", lags)


@pytest.mark.slow
def test_access_token_revocation_on_one_instance_is_refused_by_the_others(
    cluster: Cluster,
) -> None:
    """/oauth/revoke of an access token on A: refused on B and C within the bound
    (15 revocations); the refresh family itself lives on."""
    lags: list[float] = []
    with Api(cluster.a) as a:
        pair = a.grant(a.register())
        for _ in range(15):
            pair = a.refresh(pair.refresh_token)
            bearer = pair.bearer
            probes = [Probe("b", cluster.b, bearer), Probe("c", cluster.c, bearer)]

            revoke = partial(a.revoke, pair.access_token, "access_token")
            lags += measure_refusal(probes, expecting(200, revoke)).values()
            assert a.whoami(bearer).status_code == 401
    check_lags("access-token-revoke", lags)


@pytest.mark.slow
def test_refresh_token_revocation_on_one_instance_cuts_the_family_everywhere(
    cluster: Cluster,
) -> None:
    """/oauth/revoke of a refresh token on A: the family's access token is refused
    on B and C within the bound (10 families), and the refresh token is dead on C."""
    lags: list[float] = []
    with apis(cluster.a, cluster.c) as (a, c):
        email = a.register()
        for _ in range(10):
            pair = a.grant(email)
            probes = [Probe("b", cluster.b, pair.bearer), Probe("c", cluster.c, pair.bearer)]

            revoke = partial(a.revoke, pair.refresh_token, "refresh_token")
            lags += measure_refusal(probes, expecting(200, revoke)).values()
            refused = c.refresh_response(pair.refresh_token)
            assert refused.status_code == 400, refused.text
            assert refused.json()["error"] == "invalid_grant"
    check_lags("refresh-token-revoke", lags)


@pytest.mark.slow
def test_logout_all_on_one_instance_is_refused_by_the_others(cluster: Cluster) -> None:
    """POST /auth/logout-all on A: the user's cookie session and an access token
    from another family are refused on B and C within the bound (10 users)."""
    lags: list[float] = []
    with apis(cluster.a, cluster.b) as (a, b):
        for _ in range(10):
            email = a.register()
            session = a.login(email)
            other_device = b.grant(email)
            caller = a.grant(email)
            probes = [
                Probe(f"{name}/{kind}", instance, credential)
                for name, instance in (("b", cluster.b), ("c", cluster.c))
                for kind, credential in (("cookie", session), ("bearer", other_device.bearer))
            ]

            logout_all = partial(a.logout_all, caller.bearer)
            lags += measure_refusal(probes, expecting(204, logout_all)).values()
            refused = b.refresh_response(other_device.refresh_token)
            assert refused.status_code == 400, refused.text
    check_lags("logout-all", lags)


@pytest.mark.slow
def test_refresh_reuse_on_one_instance_is_refused_by_the_others(cluster: Cluster) -> None:
    """A refresh token replayed on A after the grace window revokes its family:
    the family's current access token is refused on B and C within the bound
    (10 families), and its current refresh token is dead."""
    lags: list[float] = []
    with apis(cluster.a, cluster.b) as (a, b):
        email = a.register()
        families = []
        for _ in range(10):
            first = a.grant(email)
            families.append((first, a.refresh(first.refresh_token)))
        time.sleep(REFRESH_GRACE + 0.5)  # every first refresh token is now a replay
        for first, current in families:
            probes = [Probe("b", cluster.b, current.bearer), Probe("c", cluster.c, current.bearer)]

            replay = partial(a.refresh_response, first.refresh_token)
            lags += measure_refusal(probes, expecting(400, replay, "invalid_grant")).values()
            refused = b.refresh_response(current.refresh_token)
            assert refused.status_code == 400, refused.text
    check_lags("refresh-reuse", lags)


@pytest.mark.slow
def test_user_disabled_by_the_cli_is_refused_by_every_instance(cluster: Cluster) -> None:
    """`keyturn user disable` (a separate process): the user's session and token
    are refused on A, B and C within the bound of the command's exit (3 users),
    and the user cannot sign in again."""
    lags: list[float] = []
    with apis(cluster.a, cluster.c) as (a, c):
        for _ in range(3):
            email = a.register()
            session = a.login(email)
            pair = c.grant(email)
            probes = [
                Probe(f"{instance.workdir.name[-1]}/{kind}", instance, credential)
                for instance in cluster.instances
                for kind, credential in (("cookie", session), ("bearer", pair.bearer))
            ]

            lags += measure_refusal(probes, partial(disable, cluster, email)).values()
            refused = c.login_response(email)
            assert refused.status_code == 401, refused.text
            assert c.refresh_response(pair.refresh_token).status_code == 400
    check_lags("user-disable-cli", lags)


# --- concurrent refreshes of one token on three instances -----------------------------


@pytest.mark.slow
def test_parallel_refreshes_across_instances_get_the_same_pair(cluster: Cluster) -> None:
    """One refresh token presented to A, B and C at the same instant: all three
    succeed with the same new pair (the grace window spans instances); the new
    pair works everywhere; after the window, the old token is a replay that
    revokes the family on every instance."""
    rounds = []
    with apis(*cluster.instances) as clients:
        a = clients[0]
        email = a.register()
        for _ in range(5):
            pair = a.grant(email)
            responses = _refresh_at_once(clients, pair.refresh_token)
            statuses = [response.status_code for response in responses]
            assert statuses == [200, 200, 200], [r.text for r in responses]
            pairs = {(r.json()["access_token"], r.json()["refresh_token"]) for r in responses}
            assert len(pairs) == 1, f"instances handed out different pairs: {pairs}"
            ((access, refresh),) = pairs
            assert refresh != pair.refresh_token
            for api in clients:
                assert api.http.get("/auth/whoami", headers=_bearer(access)).status_code == 200
            rounds.append((pair.refresh_token, access, refresh))
        time.sleep(REFRESH_GRACE + 0.5)
        for round_number, (old, access, refresh) in enumerate(rounds):
            replayer = clients[round_number % 3]
            replayed = replayer.refresh_response(old)
            assert replayed.status_code == 400, replayed.text
            assert replayed.json()["error"] == "invalid_grant"
            for api in clients:
                dead = api.refresh_response(refresh)
                assert dead.status_code == 400, f"family still refreshes: {dead.text}"
            deadline = time.monotonic() + LAG_LIMIT
            for api in clients:
                status = _status_when_refused(api, Bearer(access), deadline)
                assert status == 401, f"family's access token still accepted on {api.instance.url}"


def _status_when_refused(api: Api, credential: Bearer, deadline: float) -> int:
    """Poll whoami until it stops answering 200, or until ``deadline``; the last status."""
    while True:
        status = api.whoami(credential).status_code
        if status != 200 or time.monotonic() >= deadline:
            return status
        time.sleep(0.005)


def _refresh_at_once(clients: list[Api], refresh_token: str) -> list[httpx.Response]:
    """POST the refresh grant to every instance at the same instant, each on an
    already open connection."""
    for api in clients:
        assert api.http.get("/livez").status_code == 200  # open the connection first
    barrier = threading.Barrier(len(clients))
    responses: list[httpx.Response | None] = [None] * len(clients)
    errors: list[BaseException] = []

    def send(index: int) -> None:
        try:
            barrier.wait(10)
            responses[index] = clients[index].refresh_response(refresh_token)
        except BaseException as exc:  # reported by the caller
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    assert all(response is not None for response in responses)
    return [response for response in responses if response is not None]
