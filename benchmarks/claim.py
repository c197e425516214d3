"""The claim, measured in one run: revocable tokens at stateless speed, sessions
at token speed (issue #6, item 6).

Run ``python benchmarks/claim.py [--duration S] [--rounds N] [--storm-rounds N]
[--lag-samples N] [--modes LIST] [--redis-url URL] [--tool auto|wrk|python]
[--quick] [--strict]`` (``make bench`` runs it with the defaults). It needs the
``[bench]`` extra for the comparison app (``pip install -e '.[bench]'``).

One run, on this machine:

1. **Throughput.** One ``keyturn serve`` per mode (session on SQLite, session on
   Redis when there is one, token strict, token stateless) and the fastapi-users
   app of ``benchmarks/fastapi_users_app.py``, each one uvicorn worker pinned to
   the same CPU, all driven by the same load generator with the same connections,
   in **one** set of alternating rounds. Targets: keyturn's ``GET /auth/whoami``
   at **>= 0.95x** its own no-auth ``GET /livez`` in every mode, sessions at
   **>= 0.97x** stateless tokens, and at **>= 4x**
   each peer's equivalent route: fastapi-users (sessions against its cookie +
   database strategy, tokens against its JWT bearer strategy) and Django
   (``benchmarks/django_peer/``: sessions against its database sessions, tokens
   against DRF + simplejwt), served by gunicorn, one worker pinned the same way.
   A second table gives every keyturn mode against every peer route. Ratios are
   medians of the same-round ratios. whoami is answered by the authentication
   middleware itself (``keyturn.web.routes.whoami``), while ``/livez`` goes through
   FastAPI's routing; so the log also gives, per mode, ``/livez`` *with* the
   credential against ``/livez`` without it: the cost of authentication on an
   ordinary route of a host app, like for like.
2. **Revocation lag** across two instances on one store (sign out on A, poll B
   until 401): p99 **< 100 ms** in every mode that checks revocation (the stateless
   token mode does not, by design, and is shown as not applicable).
3. **Login storm**: p99 of whoami at a fixed rate during 16 concurrent sign-ins
   **< 3x** its idle p99, per mode.

Every figure is measured here and now; nothing is hard-coded. Each target prints
PASS or MISS, or N/A with the reason when it could not be measured. ``--strict``
exits 1 unless every target passed.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from django_peer.launch import DjangoPeer, start_django
from keyturn.bench.accounts import PASSWORD
from keyturn.bench.deployment import Deployment
from keyturn.bench.errors import BenchError
from keyturn.bench.lag import measure_lag
from keyturn.bench.load import LoadResult, Tool, load_tool_name
from keyturn.bench.machine import SERVER_CPU, machine
from keyturn.bench.modes import Mode, parse_modes
from keyturn.bench.results import LagResult, StormResult
from keyturn.bench.rounds import Rounds, alternate
from keyturn.bench.runner import MEASUREMENT_ERRORS, BenchOptions, redis_for_run
from keyturn.bench.servers import ServerProcess, free_port
from keyturn.bench.storm import STORM_LOGINS, measure_storm, storm_users
from keyturn.bench.throughput import LIVEZ, WHOAMI, route_case, warm_up
from summary import record_verdicts

APP = Path(__file__).with_name("fastapi_users_app.py")
FU_EMAIL = "bench@bench.example"

console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


# --- the comparison server ----------------------------------------------------------------


@dataclass
class FastapiUsers:
    """The running fastapi-users app and a credential for each strategy."""

    server: ServerProcess
    jwt: dict[str, str]
    cookie: dict[str, str]


def start_fastapi_users(root: Path) -> FastapiUsers:
    """Start the comparison app pinned like keyturn, register and sign in a user.

    Raises:
        BenchError: fastapi-users is not installed, or a step failed.
    """
    try:
        import fastapi_users  # noqa: F401
        import fastapi_users_db_sqlalchemy  # noqa: F401
    except ImportError:
        raise BenchError("the comparison needs fastapi-users: pip install -e '.[bench]'") from None
    port = free_port()
    command = [sys.executable, str(APP), "--port", str(port), "--database", str(root / "fu.db")]
    server = ServerProcess(command, workdir=root, name="fastapi-users", port=port)
    server.start(cpu=SERVER_CPU)
    with server.client() as client:
        response = client.post("/auth/register", json={"email": FU_EMAIL, "password": PASSWORD})
        if response.status_code != 201:
            raise BenchError(f"fastapi-users register: {response.status_code} {response.text}")
        form = {"username": FU_EMAIL, "password": PASSWORD}
        response = client.post("/auth/jwt/login", data=form)
        if response.status_code != 200:
            raise BenchError(f"fastapi-users JWT login: {response.status_code}")
        jwt = {"Authorization": f"Bearer {response.json()['access_token']}"}
        response = client.post("/auth/db/login", data=form)
        cookie = response.headers.get("set-cookie", "").split(";", 1)[0]
        if response.status_code != 204 or not cookie:
            raise BenchError(f"fastapi-users cookie login: {response.status_code}")
        for path, headers in (("/whoami/jwt", jwt), ("/whoami/db", {"Cookie": cookie})):
            if client.get(path, headers=headers).status_code != 200:
                raise BenchError(f"fastapi-users {path} refused its own credential")
    return FastapiUsers(server, jwt, {"Cookie": cookie})


# --- the verdicts -------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """One target: what was measured against what was aimed at."""

    claim: str
    measured: str
    target: str
    passed: bool | None  # None: could not be measured
    note: str = ""

    @property
    def label(self) -> Text:
        if self.passed is None:
            return Text("N/A", style="yellow")
        return Text("PASS", style="green") if self.passed else Text("MISS", style="bold red")


def ratio_text(rounds: Rounds, case: str, base: str) -> tuple[float, str]:
    ratios = rounds.ratios(case, base)
    value = rounds.ratio(case, base)
    spread = f" (rounds {min(ratios):.2f}-{max(ratios):.2f})" if len(ratios) > 1 else ""
    return value, (
        f"{value:.2f}x = {rounds.median(case):,.0f} / {rounds.median(base):,.0f} req/s{spread}"
    )


@dataclass(frozen=True)
class PeerRoute:
    """One peer's authenticated whoami: its case name, and the kind of keyturn
    credential it is the like-for-like rival of."""

    case: str
    label: str
    credential: str  # "session" or "token"


#: Every peer route, in the order the tables show them.
PEER_ROUTES = (
    PeerRoute("fastapi-users db whoami", "fastapi-users cookie+database", "session"),
    PeerRoute("fastapi-users jwt", "fastapi-users JWT bearer", "token"),
    PeerRoute("django session whoami", "Django database session", "session"),
    PeerRoute("django jwt whoami", "Django DRF + simplejwt", "token"),
)


def peer_ratio(rounds: Rounds, mode: Mode, route: PeerRoute, reasons: dict[str, str]) -> Verdict:
    """keyturn's whoami in ``mode`` against one peer route, target >= 4x."""
    claim = f"{mode.name}: whoami / {route.label}"
    if route.case not in rounds.results:
        peer = route.case.split()[0]
        return Verdict(claim, "-", ">= 4x", None, reasons.get(peer, "not measured"))
    value, text = ratio_text(rounds, f"{mode.name} whoami", route.case)
    return Verdict(claim, text, ">= 4x", value >= 4.0)


def throughput_verdicts(
    rounds: Rounds, modes: list[Mode], reasons: dict[str, str]
) -> list[Verdict]:
    verdicts = []
    for mode in modes:
        value, text = ratio_text(rounds, f"{mode.name} whoami", f"{mode.name} livez")
        verdicts.append(
            Verdict(f"{mode.name}: whoami / its /livez", text, ">= 0.95x", value >= 0.95)
        )
    names = {mode.name for mode in modes}
    if "token-stateless" in names:
        for session_mode in ("session-sqlite", "session-redis"):
            if session_mode in names:
                value, text = ratio_text(rounds, f"{session_mode} whoami", "token-stateless whoami")
                verdicts.append(
                    Verdict(
                        f"{session_mode}: whoami / token-stateless whoami",
                        text,
                        ">= 0.97x",
                        value >= 0.97,
                    )
                )
    for mode in modes:
        for route in PEER_ROUTES:
            if route.credential == mode.credential:
                verdicts.append(peer_ratio(rounds, mode, route, reasons))
    return verdicts


def every_peer_ratio(rounds: Rounds, modes: list[Mode], reasons: dict[str, str]) -> Table:
    """Every keyturn mode against every peer route, each ratio with its verdict."""
    table = Table(title="keyturn's whoami / each peer's authenticated whoami (target >= 4x)")
    table.add_column("keyturn mode")
    for route in PEER_ROUTES:
        table.add_column(route.label, justify="right")
    for mode in modes:
        cells: list[Text | str] = []
        for route in PEER_ROUTES:
            verdict = peer_ratio(rounds, mode, route, reasons)
            if verdict.passed is None:
                cells.append(Text("N/A", style="yellow"))
                continue
            value = rounds.ratio(f"{mode.name} whoami", route.case)
            cells.append(Text.assemble(f"{value:.2f}x ", verdict.label))
        table.add_row(mode.name, *cells)
    peers = [route.case for route in PEER_ROUTES if route.case in rounds.results]
    table.caption = "peer req/s (median): " + ", ".join(
        f"{case} {rounds.median(case):,.0f}" for case in peers
    )
    return table


def lag_verdict(mode: Mode, lag: LagResult | None, error: str | None) -> Verdict:
    claim = f"{mode.name}: revocation lag p99 across 2 instances"
    if lag is None:
        return Verdict(claim, "-", "< 100 ms", None, error or "not measured")
    if lag.p99_ms is None and not lag.not_refused:
        return Verdict(claim, "not applicable", "< 100 ms", None, lag.note or "")
    samples = len(lag.samples_ms) + lag.not_refused
    if lag.p99_ms is None or lag.p50_ms is None:
        text = f"never: {lag.not_refused} of {samples} not refused within {lag.timeout_s:g} s"
        return Verdict(claim, text, "< 100 ms", False)
    text = f"{lag.p99_ms:.1f} ms (p50 {lag.p50_ms:.1f} ms, {samples} samples)"
    return Verdict(claim, text, "< 100 ms", lag.p99_ms < 100.0)


def storm_verdict(mode: Mode, storm: StormResult | None, error: str | None) -> Verdict:
    claim = f"{mode.name}: whoami p99, {STORM_LOGINS} sign-ins / idle"
    if storm is None:
        return Verdict(claim, "-", "< 3x", None, error or "not measured")
    text = (
        f"{storm.p99_ratio:.2f}x = {storm.storm_p99_ms:.1f} / {storm.idle_p99_ms:.1f} ms "
        f"({storm.logins_per_s:.1f} sign-ins/s)"
    )
    return Verdict(claim, text, "< 3x", storm.p99_ratio < 3.0)


# --- the run ---------------------------------------------------------------------------


def run(args: argparse.Namespace) -> tuple[list[Verdict], list[Table]]:
    options = BenchOptions(
        modes=tuple(parse_modes(args.modes)),
        duration=args.duration,
        rounds=args.rounds,
        connections=args.connections,
        tool=args.tool,
        storm_rounds=args.storm_rounds,
        storm_seconds=args.duration,
        lag_samples=args.lag_samples,
        warmup=min(2.0, args.duration),
        redis_url=args.redis_url,
    )
    tool: Tool = args.tool
    verdicts: list[Verdict] = []
    tables: list[Table] = []
    with contextlib.ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="keyturn-claim-")))
        redis_url, redis_missing = stack.enter_context(redis_for_run(options, root))
        deployments: dict[str, Deployment] = {}
        for mode in options.modes:
            console.log(f"starting {mode.name}")
            if mode.store == "redis" and redis_url is None:
                verdicts.append(
                    Verdict(f"{mode.name}", "-", "all targets", None, f"{redis_missing}")
                )
                continue
            deployment = stack.enter_context(
                Deployment(mode, root / mode.name, redis_url=redis_url)
            )
            try:
                deployment.start_primary()
            except MEASUREMENT_ERRORS as exc:
                verdicts.append(Verdict(f"{mode.name}", "-", "all targets", None, str(exc)))
                continue
            deployments[mode.name] = deployment
        fu: FastapiUsers | None = None
        fu_reason = ""
        try:
            console.log("starting fastapi-users")
            fu = start_fastapi_users(root / "fastapi-users")
            stack.callback(fu.server.stop)
        except MEASUREMENT_ERRORS as exc:
            fu_reason = str(exc)
        dj: DjangoPeer | None = None
        reasons = {"fastapi-users": fu_reason}
        try:
            console.log("starting the Django peer")
            dj = start_django(root / "django", PASSWORD)
            stack.callback(dj.server.stop)
        except MEASUREMENT_ERRORS as exc:
            reasons["django"] = str(exc)
        modes = [mode for mode in options.modes if mode.name in deployments]
        if not modes:
            return verdicts, tables

        def case(
            server: ServerProcess, path: str, headers: dict[str, str]
        ) -> Callable[[], LoadResult]:
            return route_case(
                server,
                path,
                headers,
                duration=options.duration,
                connections=options.connections,
                tool=tool,
            )

        cases: dict[str, Callable[[], LoadResult]] = {}
        for mode in modes:
            deployment = deployments[mode.name]
            assert deployment.credential is not None
            cases[f"{mode.name} whoami"] = case(
                deployment.primary, WHOAMI, deployment.credential.headers
            )
            cases[f"{mode.name} livez"] = case(deployment.primary, LIVEZ, {})
            # The caller resolved, then an ordinary FastAPI route: what
            # authentication costs a host app's own routes.
            cases[f"{mode.name} livez signed-in"] = case(
                deployment.primary, LIVEZ, deployment.credential.headers
            )
        if fu is not None:
            cases["fastapi-users jwt"] = case(fu.server, "/whoami/jwt", fu.jwt)
            cases["fastapi-users db whoami"] = case(fu.server, "/whoami/db", fu.cookie)
            cases["fastapi-users livez"] = case(fu.server, "/livez", {})
        if dj is not None:
            cases["django session whoami"] = case(dj.server, "/whoami/session", dj.session)
            cases["django jwt whoami"] = case(dj.server, "/whoami/jwt", dj.jwt)
            cases["django livez"] = case(dj.server, "/livez", {})
        console.log(f"warm-up, then {options.rounds} rounds of {len(cases)} cases")
        for mode in modes:
            deployment = deployments[mode.name]
            assert deployment.credential is not None
            warm_up(
                deployment.primary,
                {WHOAMI: deployment.credential.headers, LIVEZ: {}},
                seconds=options.warmup,
                connections=options.connections,
                tool=tool,
            )
        if fu is not None:
            warm_up(
                fu.server,
                {"/whoami/jwt": fu.jwt, "/whoami/db": fu.cookie, "/livez": {}},
                seconds=options.warmup,
                connections=options.connections,
                tool=tool,
            )
        if dj is not None:
            warm_up(
                dj.server,
                {"/whoami/session": dj.session, "/whoami/jwt": dj.jwt, "/livez": {}},
                seconds=options.warmup,
                connections=options.connections,
                tool=tool,
            )
        rounds = alternate(
            cases,
            options.rounds,
            progress=lambda name, result: console.log(
                f"{name}: {result.requests_per_s:,.0f} req/s, p99 {result.p99:.1f} ms, "
                f"errors {result.errors}"
            ),
        )
        verdicts += throughput_verdicts(rounds, modes, reasons)
        tables.append(every_peer_ratio(rounds, modes, reasons))
        for mode in modes:
            _, text = ratio_text(rounds, f"{mode.name} livez signed-in", f"{mode.name} livez")
            console.log(
                f"for reference, {mode.name}: /livez with the credential (caller resolved, "
                f"then FastAPI's routing) / without: {text}"
            )
        if fu is not None:
            _, text = ratio_text(rounds, "fastapi-users jwt", "fastapi-users livez")
            console.log(f"for reference, fastapi-users JWT whoami / its /livez: {text}")
            _, text = ratio_text(rounds, "fastapi-users db whoami", "fastapi-users livez")
            console.log(f"for reference, fastapi-users cookie+db whoami / its /livez: {text}")
            fu.server.stop()  # the rest runs unpinned: nothing else on the machine
        if dj is not None:
            for name, label in (("django session whoami", "session"), ("django jwt whoami", "JWT")):
                _, text = ratio_text(rounds, name, "django livez")
                console.log(f"for reference, Django {label} whoami / its /livez: {text}")
            dj.server.stop()
        for mode in modes:
            deployment = deployments[mode.name]
            assert deployment.credential is not None
            console.log(f"{mode.name}: login storm")
            storm: StormResult | None = None
            error: str | None = None
            try:
                storm = measure_storm(
                    deployment.primary,
                    mode,
                    deployment.credential,
                    storm_users(deployment.primary),
                    rounds=options.storm_rounds,
                    seconds=options.storm_seconds,
                    rate=options.probe_rate,
                )
            except MEASUREMENT_ERRORS as exc:
                error = str(exc)
            verdicts.append(storm_verdict(mode, storm, error))
            console.log(f"{mode.name}: revocation lag")
            lag: LagResult | None = None
            error = None
            try:
                deployment.start_secondary()
                lag = measure_lag(
                    deployment.primary, deployment.secondary, mode, samples=options.lag_samples
                )
            except MEASUREMENT_ERRORS as exc:
                error = str(exc)
            verdicts.append(lag_verdict(mode, lag, error))
            deployment.close()  # its CPU back for the next mode
    return verdicts, tables


def print_verdicts(verdicts: list[Verdict], args: argparse.Namespace) -> None:
    table = Table(
        title=f"keyturn's claim, measured in one run ({args.rounds} alternating rounds of "
        f"{args.duration:g} s, {args.connections} connections; storm {args.storm_rounds} "
        f"rounds; {args.lag_samples} revocations per mode)"
    )
    table.add_column("claim")
    table.add_column("measured", justify="right")
    table.add_column("target", justify="right")
    table.add_column("verdict")
    table.add_column("note")
    order = {"whoami / its": 0, "fastapi-users": 1, "Django": 2, "revocation": 3, "sign-ins": 4}

    def rank(verdict: Verdict) -> int:
        return next((n for key, n in order.items() if key in verdict.claim), 5)

    for verdict in sorted(verdicts, key=rank):
        table.add_row(verdict.claim, verdict.measured, verdict.target, verdict.label, verdict.note)
    passed = sum(v.passed is True for v in verdicts)
    missed = sum(v.passed is False for v in verdicts)
    unknown = sum(v.passed is None for v in verdicts)
    table.caption = (
        f"{machine().caption()}\nload generator: {load_tool_name(args.tool)}. "
        f"{passed} PASS, {missed} MISS, {unknown} N/A. Throughput: every server one uvicorn "
        "worker pinned to the same CPU, one set of alternating rounds; ratios are medians "
        "of same-round req/s ratios. Storm and lag run unpinned."
    )
    Console(width=None if sys.stdout.isatty() else 200).print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per load run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating throughput rounds")
    parser.add_argument("--storm-rounds", type=int, default=3, help="login storm rounds")
    parser.add_argument("--lag-samples", type=int, default=30, help="revocations per mode")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--modes", default="all", help="comma-separated keyturn modes")
    parser.add_argument("--redis-url", default=None, help="a Redis on 127.0.0.1")
    parser.add_argument("--tool", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--quick", action="store_true", help="one short round (a smoke run)")
    parser.add_argument("--strict", action="store_true", help="exit 1 unless all PASS")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.rounds, args.storm_rounds, args.lag_samples = 1.0, 1, 1, 5
    try:
        verdicts, tables = run(args)
    except BenchError as exc:
        console.print(f"claim.py: error: {exc}")
        return 2
    print_verdicts(verdicts, args)
    record_verdicts("claim.py", verdicts)
    for table in tables:
        Console(width=None if sys.stdout.isatty() else 200).print(table)
    return 0 if not args.strict or all(v.passed for v in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
