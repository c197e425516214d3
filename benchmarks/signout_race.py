"""Does a signed-out session cookie stay accepted? The race the soak found.

Run ``python benchmarks/signout_race.py [--trials 40]``. It starts a ``keyturn
serve`` with ``KEYTURN_CACHE_TTL=2``, so a cached session is refreshed ahead in
the background after one second instead of 150 (the default trust limit is 300 s
while the fan-out bus is alive). Each trial signs in, waits just over a second,
sends a whoami (which starts that background refresh) and, while it is in flight,
signs out on a second connection; then it asks whoami again with the signed-out
cookie, and if that is accepted, measures how long until it is refused.

It prints how many sign-outs left the cookie accepted and exits 1 if any did.
Before the fix of ``SessionManager``'s refresh-ahead (a refresh that began before
a sign-out must not put the session back into the cache), most trials do.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

from keyturn.bench.accounts import PASSWORD, SESSION_COOKIE
from keyturn.bench.servers import KeyturnServer
from keyturn.bench.wire import Connection, Reply, Target

JSON = {"Content-Type": "application/json"}


def cookie_of(reply: Reply) -> str:
    for name, value in reply.headers:
        if name == "set-cookie" and value.startswith(SESSION_COOKIE + "="):
            return value.split(";", 1)[0]
    raise SystemExit(f"sign-in set no session cookie: {reply.status}")


async def trials(url: str, count: int) -> int:
    target = Target.parse(url)
    a, b = Connection(target, timeout=10), Connection(target, timeout=10)
    body = json.dumps({"email": "race@bench.example", "password": PASSWORD}).encode()
    if (await a.request("POST", "/auth/register", headers=JSON, body=body)).status != 201:
        raise SystemExit("register failed")
    accepted = 0
    for n in range(count):
        signed_in = await a.request("POST", "/auth/login", headers=JSON, body=body)
        cookie = {"Cookie": cookie_of(signed_in)}
        csrf = json.loads(signed_in.body)["csrf_token"]
        await a.request("GET", "/auth/whoami", headers=cookie)
        await asyncio.sleep(1.1)  # older than half the trust limit: refreshed ahead
        whoami = asyncio.create_task(a.request("GET", "/auth/whoami", headers=cookie))
        await asyncio.sleep(0)
        out = await b.request("POST", "/auth/logout", headers={**cookie, "X-CSRF-Token": csrf})
        await whoami
        if out.status != 204:
            raise SystemExit(f"sign-out answered {out.status}")
        if (await b.request("GET", "/auth/whoami", headers=cookie)).status == 401:
            continue
        accepted += 1
        start = time.perf_counter()
        for _ in range(200):  # at most ~10 s
            await asyncio.sleep(0.05)
            if (await b.request("GET", "/auth/whoami", headers=cookie)).status == 401:
                break
        waited = time.perf_counter() - start
        print(f"trial {n}: signed-out cookie accepted, refused about {waited:.2f} s later")
    await a.close()
    await b.close()
    return accepted


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--trials", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="keyturn-race-") as tmp:
        server = KeyturnServer([], workdir=Path(tmp), env={"KEYTURN_CACHE_TTL": "2"})
        server.start()
        try:
            accepted = asyncio.run(trials(server.url, args.trials))
        finally:
            server.stop()
    print(f"{accepted} of {args.trials} sign-outs left the cookie accepted")
    return 1 if accepted else 0


if __name__ == "__main__":
    sys.exit(main())
