"""The token endpoint in Keycloak's units: grants per second per vCPU (issue #17
item 6).

Run ``python benchmarks/token_endpoint.py [--duration S] [--chains 1,2,4,8,16]
[--backends sqlite,postgres-redis] [--profile] [--quick]``.

One ``keyturn serve`` per backend, one worker pinned to CPU 0 (one vCPU), driven
from CPU 1 over HTTP like any client (:mod:`oauth_load`). PostgreSQL and Redis,
when measured, are real servers started the way the test suite starts them
(``tests/services.py``), pinned to CPU 1 beside the client: keyturn's worker keeps
its vCPU to itself, as Keycloak's sizing guide counts the database apart.

* **refresh grant**: one chain refreshing back to back (the latency of one
  refresh), then 1..16 concurrent chains (throughput); each chain its own
  refresh family, started by a password grant.
* **introspection**: ``POST /oauth/introspect`` of one live access token by a
  confidential client (HTTP Basic), 16 connections.
* **password sign-in**: the password grant of ``POST /oauth/token`` (argon2id at
  keyturn's defaults), 4 connections, a user each.
* **client-credentials grant**: ``grant_type=client_credentials`` by the same
  confidential client (HTTP Basic; its secret is checked against a SHA-256 hash),
  16 connections: a fresh signed access token each time.

Each figure is printed beside Keycloak's published per-vCPU figures (15 password
sign-ins/s, 120 client-credentials grants/s, 120 refresh grants/s) and Ory Hydra's
~21k introspections/s (its BENCHMARKS.md; a whole machine, not one vCPU), with the
ratio, and PASS/MISS for the aim: **>= 4x Keycloak per vCPU on the refresh grant**,
on every backend. The server's own CPU use is shown beside each figure: a per-vCPU
number needs the server busy. ``--profile`` then runs the refresh load once more
against a server under cProfile (on each of ``--profile-backends``) and prints the
top of its profile and the SQL statements per refresh.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from keyturn.bench.accounts import PASSWORD, register
from keyturn.bench.errors import BenchError
from keyturn.bench.machine import CLIENT_CPU, SERVER_CPU, machine_caption, pinned
from keyturn.bench.servers import (
    KeyturnServer,
    clean_environment,
    keyturn_command,
    sqlite_url,
)
from oauth_load import (
    INTROSPECT_PATH,
    TOKEN_PATH,
    Figure,
    basic,
    closed_loop_posts,
    form,
    fresh_families,
    measured,
    password_grant,
    password_grants,
    refresh_chains,
)
from refresh_profile import profile_refresh
from summary import record_verdicts

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/services.py

KEYCLOAK_PASSWORD = 15.0
KEYCLOAK_CLIENT_CREDENTIALS = 120.0
KEYCLOAK_REFRESH = 120.0
HYDRA_INTROSPECT = 21_000.0
AIM = 4.0  # x Keycloak per vCPU, on the refresh grant
CHAINS = "1,2,4,8,16"

console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


@dataclass(frozen=True)
class Verdict:
    """One row: a figure beside its published peer, PASS/MISS where there is an aim."""

    claim: str
    measured: str
    target: str
    passed: bool | None
    note: str = ""


# --- servers -----------------------------------------------------------------------------


@contextlib.contextmanager
def backend(name: str, root: Path) -> Iterator[tuple[str, list[str], dict[str, str]]]:
    """The database URL, extra ``keyturn serve`` arguments and environment of
    backend ``name`` (a shared database needs a key-encryption key: a fresh one).

    Raises:
        BenchError: PostgreSQL or Redis cannot be started here.
    """
    if name == "sqlite":
        yield sqlite_url(root / "keyturn.db"), [], {}
        return
    if name != "postgres-redis":
        raise BenchError(f"unknown backend {name!r} (sqlite, postgres-redis)")
    try:
        from tests.services import ServiceUnavailable, start_postgres, start_redis
    except ImportError as exc:
        raise BenchError(f"tests/services.py is needed for PostgreSQL: {exc}") from None
    try:
        with pinned(CLIENT_CPU):  # their processes inherit CPU 1: CPU 0 stays keyturn's
            postgres = start_postgres()
            try:
                redis = start_redis()
            except BaseException:
                postgres.stop()
                raise
    except (ServiceUnavailable, RuntimeError) as exc:
        raise BenchError(str(exc).splitlines()[0]) from None
    try:
        kek = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
        yield postgres.url(), ["--redis-url", redis.url], {"KEYTURN_KEY_ENCRYPTION_KEY": kek}
    finally:
        redis.stop(keep_data=False)
        postgres.stop()


def add_client(
    database_url: str, extra: list[str], env: dict[str, str], workdir: Path
) -> tuple[str, str]:
    """A confidential client for introspection and the client-credentials grant,
    made with ``keyturn migrate`` and ``keyturn client add``.

    Raises:
        BenchError: the command failed.
    """
    client = ["client", "add", "bench", "--confidential", "--grant", "client_credentials"]
    for args in (
        ["migrate", "--database-url", database_url, *extra],
        [*client, "--json", "--database-url", database_url],
    ):
        done = subprocess.run(
            [*keyturn_command(), *args],
            capture_output=True,
            text=True,
            env=clean_environment(env),
            cwd=workdir,
            timeout=120,
        )
        if done.returncode != 0:
            raise BenchError(f"keyturn {args[0]}: {done.stderr.strip()[-300:]}")
    created = json.loads(done.stdout)
    return str(created["client_id"]), str(created["client_secret"])


# --- measurements ------------------------------------------------------------------------


def measure_backend(name: str, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    """Every figure of one backend."""
    chains = [int(n) for n in args.chains.split(",")]
    root.mkdir(parents=True, exist_ok=True)
    with backend(name, root) as (database_url, extra, env):
        client_id, secret = add_client(database_url, extra, env, root)
        server = KeyturnServer(extra, workdir=root / "server", database_url=database_url, env=env)
        server.start(cpu=SERVER_CPU)
        try:
            url = server.url
            emails = [f"chain{n}@bench.example" for n in range(max(chains))]
            signers = [f"signer{n}@bench.example" for n in range(args.signers)]
            for email in emails + signers:
                register(server, email)
            console.log(f"{name}: one sequential refresh chain")
            tokens = fresh_families(server, emails[:1])
            results: dict[str, Any] = {
                "sequential": measured(server, lambda: refresh_chains(url, tokens, args.duration))
            }
            for count in chains:
                console.log(f"{name}: {count} concurrent refresh chains")
                tokens = fresh_families(server, emails[:count])
                results[f"chains {count}"] = measured(
                    server,
                    lambda t=tokens: refresh_chains(url, t, args.duration),  # type: ignore[misc]
                )
            with server.client() as client:
                access = str(password_grant(client, signers[0])["access_token"])
            console.log(f"{name}: introspection")
            results["introspect"] = measured(
                server,
                lambda: closed_loop_posts(
                    url + INTROSPECT_PATH,
                    form(token=access),
                    basic(client_id, secret),
                    16,
                    args.duration,
                    expect=b'"active":true',
                ),
            )
            console.log(f"{name}: client-credentials grants")
            results["client_credentials"] = measured(
                server,
                lambda: closed_loop_posts(
                    url + TOKEN_PATH,
                    form(grant_type="client_credentials"),
                    basic(client_id, secret),
                    16,
                    args.duration,
                    expect=b'"access_token"',
                ),
            )
            console.log(f"{name}: password sign-ins")
            results["password"] = measured(
                server, lambda: password_grants(url + TOKEN_PATH, signers, PASSWORD, args.duration)
            )
            return results
        finally:
            server.stop()


def profiled(name: str, args: argparse.Namespace, tmp: Path) -> str:
    """:func:`profile_refresh` on backend ``name`` (a fresh database of its own).

    Raises:
        BenchError: the backend cannot be started or the profile failed.
    """
    root = tmp / f"profile-{name}"
    root.mkdir(parents=True, exist_ok=True)
    with backend(name, root) as (database_url, extra, env):
        add_client(database_url, extra, env, root)  # migrates the database
        return profile_refresh(args, root, database_url=database_url, extra=extra, env=env)


# --- the report --------------------------------------------------------------------------


def verdicts_for(name: str, results: dict[str, Any]) -> list[Verdict]:
    """Refresh against the aim; the other figures beside their peers."""
    chained = {key: fig for key, fig in results.items() if key.startswith("chains ")}
    best_key = max(chained, key=lambda key: chained[key].outcome.per_s)
    best: Figure = chained[best_key]
    rate = best.outcome.per_s
    seq: Figure = results["sequential"]
    spread = ", ".join(
        f"{key.split()[1]}: {fig.outcome.per_s:,.0f}/s" for key, fig in chained.items()
    )
    rows = [
        Verdict(
            f"{name}: refresh grants/s per vCPU (best of {len(chained)} chain counts)",
            f"{rate / KEYCLOAK_REFRESH:.2f}x Keycloak = {rate:,.0f} / 120 ({best_key})",
            f">= {AIM:g}x (>= {AIM * KEYCLOAK_REFRESH:,.0f}/s)",
            rate >= AIM * KEYCLOAK_REFRESH,
            f"chains {spread}; sequential {seq.outcome.per_s:,.0f}/s = "
            f"{seq.outcome.percentile(50):.1f} ms per refresh; server CPU {best.server_cpu:.0%}"
            f" = {best.cpu_ms:.2f} ms of CPU per refresh",
        ),
    ]
    return rows


def info_rows(name: str, results: dict[str, Any], signers: int) -> list[tuple[str, ...]]:
    """(what, measured, published peer, ratio) for every figure."""
    peer = "Keycloak 120/s per vCPU"
    rows: list[tuple[str, ...]] = []
    for key, fig in results.items():
        if key == "sequential" or key.startswith("chains "):
            what = "one sequential chain" if key == "sequential" else f"{key} concurrent"
            ratio = f"{fig.outcome.per_s / KEYCLOAK_REFRESH:.2f}x"
            rows.append((f"{name}: refresh grant, {what}", fig.text(), peer, ratio))
    introspect: Figure = results["introspect"]
    password: Figure = results["password"]
    granted: Figure = results["client_credentials"]
    rows += [
        (
            f"{name}: introspection, 16 connections",
            introspect.text(),
            "Hydra ~21,000/s (a whole machine)",
            f"{introspect.outcome.per_s / HYDRA_INTROSPECT:.3f}x",
        ),
        (
            f"{name}: password sign-ins, {signers} connections",
            password.text(),
            "Keycloak 15/s per vCPU",
            f"{password.outcome.per_s / KEYCLOAK_PASSWORD:.2f}x",
        ),
        (
            f"{name}: client-credentials grant, 16 connections",
            granted.text(),
            peer,
            f"{granted.outcome.per_s / KEYCLOAK_CLIENT_CREDENTIALS:.2f}x",
        ),
    ]
    return rows


def label(passed: bool | None) -> str:
    return {True: "[green]PASS[/]", False: "[bold red]MISS[/]", None: "[yellow]N/A[/]"}[passed]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per figure")
    parser.add_argument("--chains", default=CHAINS, help="concurrent refresh chains")
    parser.add_argument("--signers", type=int, default=4, help="password sign-in connections")
    parser.add_argument("--backends", default="sqlite,postgres-redis")
    parser.add_argument("--profile", action="store_true", help="cProfile the refresh grant")
    parser.add_argument("--profile-top", type=int, default=25, help="profile lines shown")
    parser.add_argument("--profile-chains", type=int, default=1, help="chains when profiling")
    parser.add_argument(
        "--profile-backends", default="sqlite", help="backends to profile (sqlite,postgres-redis)"
    )
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke run)")
    parser.add_argument("--strict", action="store_true", help="exit 1 unless every aim PASSes")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration = 2.0
        args.chains = "1,4,16" if args.chains == CHAINS else args.chains
    verdicts: list[Verdict] = []
    rows: list[tuple[str, ...]] = []
    profile = ""
    with tempfile.TemporaryDirectory(prefix="keyturn-token-endpoint-") as tmp:
        for name in args.backends.split(","):
            try:
                results = measure_backend(name, args, Path(tmp) / name)
            except BenchError as exc:
                verdicts.append(
                    Verdict(f"{name}: refresh grants/s per vCPU", "-", ">= 4x", None, str(exc))
                )
                continue
            verdicts += verdicts_for(name, results)
            rows += info_rows(name, results, args.signers)
        if args.profile:
            profiles = []
            for name in args.profile_backends.split(","):
                console.log(f"{name}: the refresh grant under cProfile")
                try:
                    profiles.append(f"=== {name} ===\n" + profiled(name, args, Path(tmp)))
                except BenchError as exc:
                    profiles.append(f"=== {name} ===\nno profile: {exc}")
            profile = "\n".join(profiles)
    out = Console(width=None if sys.stdout.isatty() else 200)
    table = Table(title=f"The token endpoint in Keycloak's units ({args.duration:g} s per figure)")
    for column in ("aim", "measured", "target", "verdict", "note"):
        table.add_column(column)
    for v in verdicts:
        table.add_row(v.claim, v.measured, v.target, label(v.passed), v.note)
    table.caption = machine_caption() + "\nkeyturn serve: one worker pinned to CPU 0 (one vCPU)."
    out.print(table)
    detail = Table(title="Every figure beside its published peer")
    for column in ("figure", "measured", "published", "ratio"):
        detail.add_column(column)
    for row in rows:
        detail.add_row(*row)
    detail.caption = (
        "Keycloak: its sizing guide's per-vCPU figures. Hydra: its BENCHMARKS.md, a whole "
        "machine, so the ratio flatters Hydra. server CPU: the keyturn worker's CPU use "
        "during the run (100% = its one vCPU busy)."
    )
    out.print(detail)
    if profile:
        out.print(profile, markup=False, highlight=False)
    record_verdicts("token_endpoint.py", verdicts)
    return 0 if not args.strict or all(v.passed for v in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
