"""Where the time of one DPoP proof goes, stage by stage, in process (issue #16, item 4).

Run ``python benchmarks/dpop_proof.py [--alg ES256] [--rounds N] [--batch N]
[--profile]``. For one client key it prints the median µs per call of:

- the floor: the bare ``cryptography`` check of one proof's signature (with the
  signature already in DER), then with the JOSE ``r || s`` turned into DER, which
  is all the crypto a proof needs;
- the stages a proof goes through, each timed alone with the libraries keyturn
  uses (joserfc's parse, the base64url and JSON decoding, the ``ath`` hash, the
  cached ``htu`` normal form, the replay-cache entry), and the joserfc calls the
  verifier avoided before issue #16 item 4 (``validate_compact``, the canonical
  JWK JSON as a cache key);
- the three ways keyturn runs the whole check: :func:`keyturn.dpop.check_proof`
  (stateless), :meth:`keyturn.dpop.DpopVerifier.verify` (plus the in-process
  replay cache) and the resolver's ``_check_dpop``, which is what the middleware
  runs for ``Authorization: DPoP`` (the request URL, the ``DPoP`` header values,
  the ``cnf.jkt`` binding, then ``verify``).

"over floor" is a row minus the signature check with its DER conversion: the
part of a proof that is not cryptography. Proofs are signed before timing, each
with its own ``jti`` (every verify is a first use) and ``ath`` of one token; the
verifier's clock is frozen at their ``iat``. A round times a batch of every case
in a rotated order, in CPU time (``time.process_time_ns``); a figure is the median
of the rounds. ``--profile`` adds the
top of a cProfile of the middleware path. Uses only public names of keyturn (and
the resolver), so the same script measures an older checkout (``PYTHONPATH``).
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import pstats
import statistics
import time
import uuid
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from joserfc import jws
from joserfc.jwk import ECKey, Key, OKPKey, RSAKey
from joserfc.util import urlsafe_b64decode

from keyturn.bench.machine import machine_caption
from keyturn.clock import FrozenClock
from keyturn.dpop import DpopVerifier, MemoryReplayCache, access_token_hash, check_proof
from keyturn.dpop.htu import normalize_uri
from keyturn.dpop.store import replay_key
from keyturn.settings import Settings
from keyturn.tokens.claims import AccessTokenClaims
from keyturn.web.authn.resolver import CredentialResolver
from keyturn.web.authn.scope import TOKEN_CLAIMS_KEY

ORIGIN = "https://api.example.com"
PATH = "/auth/whoami"
URL = ORIGIN + PATH
#: An access token of a typical size (keyturn's are about 700 characters).
TOKEN = "eyJhbGciOiJFUzI1NiJ9." + "x" * 640 + ".sig"
CLIENT_KEYS: dict[str, Callable[[], Key]] = {
    "ES256": lambda: ECKey.generate_key("P-256"),
    "EdDSA": lambda: OKPKey.generate_key("Ed25519"),
    "RS256": lambda: RSAKey.generate_key(2048),
}
#: One operation of a case: called with the index of the call in its round.
Operation = Callable[[int], object]


class _Registry(jws.JWSRegistry):
    """joserfc's registry with room for a header holding an RSA key (as keyturn's)."""

    max_header_length = 2048
    max_payload_length = 2048
    max_signature_length = 1024


def make_proofs(key: Key, alg: str, iat: int, count: int) -> list[str]:
    """``count`` proofs of ``key`` for GET URL with ``ath`` of TOKEN, each its own ``jti``."""
    header: dict[str, Any] = {"typ": "dpop+jwt", "alg": alg, "jwk": key.as_dict(private=False)}
    registry = jws.JWSRegistry(algorithms=[alg])
    ath = access_token_hash(TOKEN)
    proofs = []
    for _ in range(count):
        claims = f'{{"jti":"{uuid.uuid4()}","htm":"GET","htu":"{URL}","iat":{iat},"ath":"{ath}"}}'
        proofs.append(jws.serialize_compact(header, claims.encode(), key, registry=registry))
    return proofs


def signature_checks(key: Key, proof: str) -> tuple[Operation, Operation]:
    """The bare ``cryptography`` check of ``proof``'s signature: with a DER
    signature prepared beforehand, and from the JOSE signature as received."""
    signing_input, _, segment = proof.rpartition(".")
    message, signature = signing_input.encode(), urlsafe_b64decode(segment.encode())
    public: Any = key.get_op_key("verify")
    if isinstance(public, ec.EllipticCurvePublicKey):
        half = len(signature) // 2
        ecdsa = ec.ECDSA(hashes.SHA256())

        def der(raw: bytes) -> bytes:
            r, s = int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")
            return encode_dss_signature(r, s)

        prepared = der(signature)
        return (
            lambda _: public.verify(prepared, message, ecdsa),
            lambda _: public.verify(der(signature), message, ecdsa),
        )
    if isinstance(public, rsa.RSAPublicKey):
        pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()
        rsa_check: Operation = lambda _: public.verify(signature, message, pkcs1, sha256)  # noqa: E731
        return rsa_check, rsa_check
    okp_check: Operation = lambda _: public.verify(signature, message)  # noqa: E731
    return okp_check, okp_check


def bound_claims(jkt: str, now: float) -> AccessTokenClaims:
    """Claims of an access token bound to ``jkt``, as the bearer check leaves them."""
    return AccessTokenClaims(
        iss=ORIGIN, sub="user-1", aud=ORIGIN, exp=int(now) + 900, iat=int(now),
        jti="token-1", sid="sid-1", scope="openid", jkt=jkt,
    )  # fmt: skip


def measure(alg: str, rounds: int, batch: int, profile: bool) -> tuple[dict[str, float], str]:
    """Median µs per call of every case for one client algorithm (and a profile)."""
    key = CLIENT_KEYS[alg]()
    jkt = key.thumbprint()
    clock = FrozenClock(1_800_000_000.0)
    now = clock.now()
    per_round = batch * 3  # the three whole-path cases each use up a proof per call
    proofs = make_proofs(key, alg, int(now), rounds * per_round + batch * 3 + 8)
    unused = iter(proofs)
    sample = proofs[-1]
    header_segment, payload_segment, signature_segment = sample.split(".")

    verifier = DpopVerifier(MemoryReplayCache(clock, max_entries=len(proofs) + 1), clock)
    settings = Settings(issuer=ORIGIN)
    resolver = CredentialResolver(SimpleNamespace(settings=settings, dpop=verifier))  # type: ignore[arg-type]
    claims = bound_claims(jkt, now)
    scope_headers = [(b"host", b"api.example.com"), (b"authorization", b"DPoP " + TOKEN.encode())]

    def run_middleware(_: int) -> object:
        scope = {
            "type": "http",
            "method": "GET",
            "path": PATH,
            "raw_path": PATH.encode(),
            "headers": [*scope_headers, (b"dpop", next(unused).encode("latin-1"))],
            TOKEN_CLAIMS_KEY: claims,
        }
        return _drive(resolver._check_dpop(scope, "dpop", TOKEN))

    def run_verify(_: int) -> object:
        return _drive(
            verifier.verify(
                next(unused), method="GET", url=URL, access_token=TOKEN, expected_jkt=jkt
            )
        )

    def run_checks(_: int) -> object:
        return check_proof(
            next(unused), method="GET", url=URL, now=now, max_age=60, clock_skew=5,
            access_token=TOKEN, expected_jkt=jkt,
        )  # fmt: skip

    for run in (run_checks, run_verify, run_middleware):  # warm every cache once
        run(0)

    parser_registry = _Registry(algorithms=[alg])
    parsed = jws.extract_compact(sample.encode(), registry=parser_registry)
    jwk = parsed.headers()["jwk"]
    payload = parsed.payload
    replay = MemoryReplayCache(clock, max_entries=rounds * batch + 1)
    replay_keys = iter(range(10**9))
    floor, floor_der = signature_checks(key, sample)

    cases: dict[str, Operation] = {
        "cryptography verify (DER prepared)": floor,
        "cryptography verify (JOSE r||s -> DER)": floor_der,
        "joserfc extract_compact": lambda _: jws.extract_compact(
            sample.encode(), registry=parser_registry
        ),
        "joserfc validate_compact": lambda _: jws.validate_compact(
            parsed, key, registry=parser_registry
        ),
        "base64url payload + signature": lambda _: (
            urlsafe_b64decode(payload_segment.encode()),
            urlsafe_b64decode(signature_segment.encode()),
        ),
        "json.loads claims": lambda _: json.loads(payload),
        "canonical JWK json.dumps": lambda _: json.dumps(
            jwk, sort_keys=True, separators=(",", ":")
        ),
        "header segment dict lookup": lambda _: {header_segment: 1}.get(header_segment),
        "ath (SHA-256 of the token)": lambda _: access_token_hash(TOKEN),
        "htu normal form (uncached)": lambda _: normalize_uri(URL, allow_query=True),
        "replay_key + MemoryReplayCache.add": lambda _: _drive(
            replay.add(replay_key(jkt, URL, str(next(replay_keys))), 66)
        ),
        "sha256 of the replay key material": lambda _: hashlib.sha256(
            f"{jkt}\0{URL}\0jti".encode()
        ).hexdigest(),
        "check_proof": run_checks,
        "DpopVerifier.verify": run_verify,
        "middleware (_check_dpop)": run_middleware,
    }
    samples: dict[str, list[float]] = {name: [] for name in cases}
    names = list(cases)
    for index in range(rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(_time(cases[name], batch))
    result = {name: statistics.median(values) for name, values in samples.items()}
    text = ""
    if profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(batch):
            run_middleware(0)
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
        text = out.getvalue()
    return result, text


def _drive(coroutine: Any) -> object:
    """Run a coroutine that never suspends (the memory cache, the nonce-free
    verifier) to its end without an event loop, as one await would."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise RuntimeError("the coroutine suspended")


def _time(operation: Operation, count: int) -> float:
    """CPU µs per call of ``operation`` over ``count`` calls (the process's CPU
    time, so a shared machine's other processes only add cache misses)."""
    start = time.process_time_ns()
    for index in range(count):
        operation(index)
    return (time.process_time_ns() - start) / count / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alg", choices=sorted(CLIENT_KEYS), default="ES256")
    parser.add_argument("--rounds", type=int, default=15, help="rounds (default 15)")
    parser.add_argument("--batch", type=int, default=300, help="calls per case per round")
    parser.add_argument("--profile", action="store_true", help="cProfile the middleware path")
    args = parser.parse_args()
    result, profile = measure(args.alg, args.rounds, args.batch, args.profile)
    floor = result["cryptography verify (JOSE r||s -> DER)"]
    print(f"One {args.alg} DPoP proof, median CPU µs per call over {args.rounds} rounds")
    print(f"machine: {machine_caption(pinned=False)}")
    print()
    print(f"{'case':<40} {'µs':>8} {'over floor':>11}")
    for name, value in result.items():
        whole = name in ("check_proof", "DpopVerifier.verify", "middleware (_check_dpop)")
        extra = f"{value - floor:>11.1f}" if whole else ""
        print(f"{name:<40} {value:>8.2f} {extra}")
    if profile:
        print()
        print(profile)


if __name__ == "__main__":
    main()
