"""``keyturn serve --redis-url``, end to end, as a real process."""

from __future__ import annotations

import hashlib
import json
import time

import httpx
import redis
from tests.live import LiveServer, LiveServers
from tests.services import RedisServer
from tests.support import session_cookie

SESSION_COOKIE = "__Host-keyturn_session"
EMAIL = "redis-user@example.com"
PASSWORD = "correct horse battery staple"


def sign_in(server: LiveServer) -> tuple[str, str, str]:
    """POST /auth/login; returns (session secret, CSRF token, user id)."""
    with server.client() as client:
        response = client.post("/auth/login", json={"email": EMAIL, "password": PASSWORD})
    assert response.status_code == 200, response.text
    secret = response.cookies.get(SESSION_COOKIE) or session_cookie(response)
    body = response.json()
    return secret, body["csrf_token"], body["user"]["id"]


def whoami(server: LiveServer, secret: str) -> httpx.Response:
    with server.client() as client:
        return client.get("/auth/whoami", headers={"Cookie": f"{SESSION_COOKIE}={secret}"})


def dump(client: redis.Redis) -> dict[str, str]:
    """Every key with its value rendered as text."""
    found: dict[str, str] = {}
    for key in client.scan_iter(match="*", count=1000):
        name = key.decode()
        kind = client.type(key).decode()
        if kind == "string":
            value: object = client.get(key)
        elif kind == "hash":
            value = client.hgetall(key)
        elif kind == "zset":
            value = client.zrange(key, 0, -1, withscores=True)
        else:
            raise AssertionError(f"unexpected {kind} key {name}")
        found[name] = repr(value)
    return found


def start_server(live_servers: LiveServers, redis_url: str) -> LiveServer:
    server = live_servers("--redis-url", redis_url, start=False)
    server.add_user(EMAIL, PASSWORD)
    return server.start()


def test_a_session_signed_in_through_the_api_lives_in_redis(
    live_servers: LiveServers, redis_url: str
) -> None:
    """With --redis-url, POST /auth/login stores the session in Redis under the
    documented keys (hashed, never the secret), /auth/whoami accepts it, and
    POST /auth/logout removes it from Redis."""
    server = start_server(live_servers, redis_url)
    client = redis.Redis.from_url(redis_url)
    try:
        with server.client() as http:
            health = http.get("/healthz")
        assert health.status_code == 200, health.text

        secret, csrf, user_id = sign_in(server)
        id_hash = hashlib.sha256(secret.encode()).hexdigest()
        stored = dump(client)
        assert all(key.startswith("keyturn:") for key in stored)
        session_key = f"keyturn:{{u:{user_id}}}:s:{id_hash}"
        assert session_key in stored
        assert f"keyturn:sid:{id_hash}" in stored
        assert f"keyturn:{{u:{user_id}}}:sessions" in stored
        assert client.pttl(session_key) > 0
        everything = json.dumps(stored)
        assert secret not in everything
        assert csrf not in everything

        response = whoami(server, secret)
        assert response.status_code == 200, response.text
        assert response.json()["email"] == EMAIL
        assert response.json()["via"] == "session"

        with server.client() as http:
            logout = http.post(
                "/auth/logout",
                headers={
                    "Cookie": f"{SESSION_COOKIE}={secret}",
                    "X-CSRF-Token": csrf,
                    "Origin": server.url,
                },
            )
        assert logout.status_code == 204, logout.text
        assert not client.exists(session_key)
        assert not client.exists(f"keyturn:sid:{id_hash}")
        assert whoami(server, secret).status_code == 401
    finally:
        client.close()


def test_redis_outage_is_503_and_sessions_survive_a_restart(
    live_servers: LiveServers, private_redis: RedisServer
) -> None:
    """Redis stopped: /healthz and cookie requests answer 503 store_unavailable
    (never 500, never a silent accept once the cache bound has passed). Redis
    restarted: the same server serves again, and the session persisted by Redis
    (AOF) is still valid, without restarting keyturn."""
    server = start_server(live_servers, private_redis.url)
    secret, _csrf, _user = sign_in(server)
    assert whoami(server, secret).status_code == 200

    private_redis.stop()
    with server.client() as http:
        health = http.get("/healthz")
    assert health.status_code == 503, health.text
    assert health.json()["error"] == "store_unavailable"
    # A cached validation may stand for the staleness bound (at most 5 s), then the
    # store is asked and the answer is 503; never a 500, never any other answer.
    stopped = time.monotonic()
    while True:
        response = whoami(server, secret)
        if response.status_code == 503:
            assert response.json()["error"] == "store_unavailable"
            break
        assert response.status_code == 200, response.text
        assert time.monotonic() - stopped < 10, "still accepted 10 s into the outage"
        time.sleep(0.2)

    private_redis.start()
    with server.client() as http:
        assert http.get("/healthz").status_code == 200
    response = whoami(server, secret)
    assert response.status_code == 200, response.text
    assert response.json()["email"] == EMAIL
