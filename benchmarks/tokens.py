"""What an access token costs on this machine.

Run ``python benchmarks/tokens.py [--reps N] [--batch-ms MS]``. For each algorithm
it prints the median cost of one verification through keyturn's
:class:`~keyturn.tokens.access.TokenVerifier` with the cache off ("cold"), next to the raw
``cryptography`` primitive on the very same signature (the floor), and next to
joserfc and PyJWT verifying the same token with the same checks (signature,
``exp``, ``iss``, ``aud``); then the cached ("warm") verify and the cost to sign.

Every competitor runs in one process on pre-loaded key objects; each rep times a
batch of each in a rotated order, and a figure is the median over reps (ratios are
medians of per-rep ratios, which is what survives a noisy shared VM).

``main()`` prints a list of sections; each section is a function taking the parsed
arguments and returning a Rich renderable, so further measurements (``GET
/auth/whoami`` req/s with a bearer token, say) are one more function in
``SECTIONS``.
"""

from __future__ import annotations

import argparse
import hmac
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from joserfc import jwt as joserfc_jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import import_key
from joserfc.util import urlsafe_b64decode
from rich.console import Console, Group, RenderableType
from rich.table import Table

from harness import bench_server, compare_routes, register
from keyturn.clock import SystemClock
from keyturn.keys.records import ALGORITHMS, SigningKey, generate_key, load_private_key
from keyturn.keys.ring import KeyRing
from keyturn.settings import Settings
from keyturn.tokens.access import TokenIssuer, TokenVerifier

if TYPE_CHECKING:
    from keyturn.bench.servers import KeyturnServer as LiveServer

ISSUER = "https://auth.example.com"

Op = Callable[[], object]


@dataclass(frozen=True)
class Row:
    """Medians for one algorithm, in microseconds (None: library not installed)."""

    alg: str
    token_bytes: int
    primitive: float
    cold: float
    cold_ratio: float
    joserfc: float
    joserfc_ratio: float
    pyjwt: float | None
    pyjwt_ratio: float | None
    warm: float
    sign: float


def _batch_us(op: Op, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        op()
    return (time.perf_counter() - start) / n * 1e6


def _calibrate(op: Op, batch_ms: float) -> int:
    """How many calls of ``op`` fill about ``batch_ms`` milliseconds."""
    op()
    per_call = max(_batch_us(op, 50), 0.05)
    return max(20, int(batch_ms * 1000 / per_call))


def measure(ops: dict[str, Op], reps: int, batch_ms: float) -> dict[str, list[float]]:
    """Per-rep µs per call of every op, each rep running them in a rotated order."""
    sizes = {name: _calibrate(op, batch_ms) for name, op in ops.items()}
    samples: dict[str, list[float]] = {name: [] for name in ops}
    names = list(ops)
    for rep in range(reps):
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(_batch_us(ops[name], sizes[name]))
    return samples


def _ratio(samples: dict[str, list[float]], name: str, base: str) -> float:
    return statistics.median(a / b for a, b in zip(samples[name], samples[base], strict=True))


def primitive_verify(record: SigningKey, token: str) -> Op:
    """The bare ``cryptography`` check of ``token``'s signature: the floor."""
    signing_input, _, segment = token.rpartition(".")
    message = signing_input.encode()
    signature = urlsafe_b64decode(segment.encode())
    private = load_private_key(record)
    public = private.get_op_key("verify")
    if isinstance(public, bytes):  # HS256: the secret itself
        secret = public
        return lambda: hmac.compare_digest(hmac.digest(secret, message, "sha256"), signature)
    if isinstance(public, ec.EllipticCurvePublicKey):
        der = encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        )
        algorithm = ec.ECDSA(hashes.SHA256())
        return lambda: public.verify(der, message, algorithm)
    if isinstance(public, rsa.RSAPublicKey):
        pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()
        return lambda: public.verify(signature, message, pkcs1, sha256)
    assert isinstance(public, ed25519.Ed25519PublicKey)
    return lambda: public.verify(signature, message)


def joserfc_verify(record: SigningKey, ring: KeyRing, token: str, settings: Settings) -> Op:
    """joserfc used directly: decode with the algorithm pinned, then its claims rules."""
    key = None if record.is_symmetric else import_key(dict(ring.jwks()["keys"][0]))
    if key is None:
        key = ring.verification_key(record.kid).key
    rules = joserfc_jwt.JWTClaimsRegistry(
        leeway=settings.clock_leeway,
        iss={"essential": True, "value": settings.public_issuer},
        aud={"essential": True, "value": settings.token_audience},
        exp={"essential": True},
    )
    algorithms = [record.alg]

    def run() -> object:
        decoded = joserfc_jwt.decode(token, key, algorithms=algorithms)
        rules.validate(decoded.claims)
        return decoded

    return run


def pyjwt_verify(record: SigningKey, token: str, settings: Settings) -> Op | None:
    """PyJWT's ``decode`` with a pre-loaded key object, or None if not installed."""
    try:
        import jwt
    except ImportError:
        return None
    private = load_private_key(record)
    key: Any = private.get_op_key("verify")
    options: Any = {"require": ["exp", "iss", "aud"]}
    algorithms = [record.alg]
    audience, issuer = settings.token_audience, settings.public_issuer
    return lambda: jwt.decode(
        token, key, algorithms=algorithms, audience=audience, issuer=issuer, options=options
    )


def measure_algorithm(alg: str, reps: int, batch_ms: float) -> Row:
    """Every figure of one row: the same token through every verifier."""
    settings = Settings(issuer=ISSUER)
    clock = SystemClock()
    record = generate_key(alg, now=clock.now())  # type: ignore[arg-type]
    ring = KeyRing.from_settings([record], settings, now=clock.now())
    issuer = TokenIssuer(ring, settings, clock)
    token, _ = issuer.issue("user-1", sid="sid-1", roles=["admin"], scope="read")
    cold = TokenVerifier(ring, settings, clock, cache_entries=0)
    warm = TokenVerifier(ring, settings, clock)
    warm.verify(token)

    ops: dict[str, Op] = {
        "primitive": primitive_verify(record, token),
        "cold": lambda: cold.verify(token),
        "joserfc": joserfc_verify(record, ring, token, settings),
        "warm": lambda: warm.verify(token),
        "sign": lambda: issuer.issue("user-1", sid="sid-1", roles=["admin"], scope="read"),
    }
    pyjwt_op = pyjwt_verify(record, token, settings)
    if pyjwt_op is not None:
        ops["pyjwt"] = pyjwt_op
    for op in ops.values():  # every verifier must accept the token it is timed on
        op()
    if alg == "RS256":  # RSA signing is ~1 ms: fewer, longer batches are plenty
        batch_ms = max(batch_ms, 50)
    samples = measure(ops, reps, batch_ms)

    def median(name: str) -> float:
        return statistics.median(samples[name])

    return Row(
        alg=alg,
        token_bytes=len(token),
        primitive=median("primitive"),
        cold=median("cold"),
        cold_ratio=_ratio(samples, "cold", "primitive"),
        joserfc=median("joserfc"),
        joserfc_ratio=_ratio(samples, "joserfc", "primitive"),
        pyjwt=median("pyjwt") if "pyjwt" in samples else None,
        pyjwt_ratio=_ratio(samples, "pyjwt", "primitive") if "pyjwt" in samples else None,
        warm=median("warm"),
        sign=median("sign"),
    )


def machine() -> str:
    """One line naming the machine, interpreter and libraries."""
    try:
        pyjwt = version("pyjwt")
    except Exception:
        pyjwt = "not installed"
    return (
        f"{platform.platform()} | {platform.machine()} | {platform.python_implementation()} "
        f"{platform.python_version()} | os.cpu_count()={os.cpu_count()} | "
        f"cryptography {version('cryptography')}, joserfc {version('joserfc')}, PyJWT {pyjwt}"
    )


def token_verification_section(args: argparse.Namespace) -> RenderableType:
    """Table: cold and warm verify, and sign, per algorithm."""
    rows = [measure_algorithm(alg, args.reps, args.batch_ms) for alg in ALGORITHMS]
    table = Table(title=f"Access tokens, µs per operation (median of {args.reps} reps)")
    table.add_column("alg")
    for column in (
        "bytes",
        "primitive",
        "keyturn cold",
        "joserfc",
        "PyJWT",
        "keyturn warm",
        "sign",
    ):
        table.add_column(column, justify="right")
    for row in rows:
        pyjwt = "n/a" if row.pyjwt is None else f"{row.pyjwt:.1f} ({row.pyjwt_ratio:.2f}x)"
        table.add_row(
            row.alg,
            str(row.token_bytes),
            f"{row.primitive:.1f}",
            f"{row.cold:.1f} ({row.cold_ratio:.2f}x)",
            f"{row.joserfc:.1f} ({row.joserfc_ratio:.2f}x)",
            pyjwt,
            f"{row.warm:.2f}",
            f"{row.sign:.1f}",
        )
    table.caption = (
        f"{machine()}\n"
        "primitive: cryptography's verify of the same signature (HS256: hmac.digest + "
        "compare_digest). (Nx): multiple of the primitive, median of per-rep ratios.\n"
        "cold: TokenVerifier.verify with the cache off: our input pre-checks and header policy, "
        "then joserfc's jws.deserialize_compact (parse + signature), then our claim rules. "
        "warm: a cache hit. joserfc/PyJWT: their decode with the algorithm "
        "pinned and exp/iss/aud checked. sign: TokenIssuer.issue, claims and jti included."
    )
    return table


PASSWORD = "correct horse battery staple"


def bearer_token(server: LiveServer, email: str) -> str:
    """An access token from the password grant of ``/oauth/token`` (a real sign-in)."""
    register(server, email, PASSWORD)
    with server.client() as client:
        response = client.post(
            "/oauth/token",
            data={"grant_type": "password", "username": email, "password": PASSWORD},
        )
        if response.status_code != 200:
            raise RuntimeError(f"POST /oauth/token: {response.status_code} {response.text}")
        token = str(response.json()["access_token"])
        whoami = client.get("/auth/whoami", headers={"Authorization": f"Bearer {token}"})
        if whoami.status_code != 200 or whoami.json().get("via") != "token":
            raise RuntimeError(f"whoami with the token: {whoami.status_code} {whoami.text}")
    return token


def http_section(args: argparse.Namespace) -> RenderableType:
    """Tables: whoami with a bearer token against /livez, in strict and stateless modes."""
    tables = []
    for mode in ("strict", "stateless"):
        with bench_server(["--workers", "1", "--revocation-mode", mode]) as server:
            headers = {"Authorization": f"Bearer {bearer_token(server, 'bench@example.com')}"}
            tables.append(
                compare_routes(
                    server,
                    {
                        f"GET /auth/whoami (bearer, {mode})": ("/auth/whoami", headers),
                        "GET /livez (no auth)": ("/livez", {}),
                    },
                    args,
                    title=f"GET /auth/whoami with a bearer token, revocation mode {mode}",
                )
            )
    return Group(*tables)


#: Each section takes the parsed arguments and returns something Rich can print.
SECTIONS: dict[str, Callable[[argparse.Namespace], RenderableType]] = {
    "verify": token_verification_section,
    "http": http_section,
}


def main(argv: list[str] | None = None) -> None:
    """Run every section and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--reps", type=int, default=9, help="batches per median (default 9)")
    parser.add_argument(
        "--batch-ms", type=float, default=60.0, help="target length of one batch (default 60)"
    )
    parser.add_argument("--rounds", type=int, default=5, help="HTTP rounds (default 5)")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per HTTP run")
    parser.add_argument("--connections", type=int, default=32, help="HTTP connections")
    parser.add_argument("--tool", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--only", choices=tuple(SECTIONS), help="run one section")
    args = parser.parse_args(argv)
    # joserfc warns on every "EdDSA" use (RFC 9864 prefers "Ed25519"); the warning
    # machinery still runs and is part of its measured cost, the printing is not.
    warnings.simplefilter("ignore", SecurityWarning)
    console = Console(width=None if sys.stdout.isatty() else 120)
    for name, section in SECTIONS.items():
        if args.only in (None, name):
            console.print(section(args))


if __name__ == "__main__":
    main()
