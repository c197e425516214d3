"""What a DPoP proof costs on this machine, next to the access token it comes with.

Run ``python benchmarks/dpop.py [--rounds N] [--batch N]``. For ES256, EdDSA and
RS256 client keys it prints the median cost (µs) of one proof verification (next
to the bare ``cryptography`` signature check, the floor), both
the stateless checks alone (:func:`keyturn.dpop.check_proof`: parse, policy,
signature, claims, thumbprint) and the full :meth:`keyturn.dpop.DpopVerifier.verify`
with the in-process replay cache (one insert per proof), next to one cold
verification of a keyturn access token signed with the same algorithm
(:class:`keyturn.tokens.access.TokenVerifier`, its cache off). "DPoP / bearer" is what a
DPoP request adds relative to a bearer request's token check.

Proofs are made before timing (each has its own ``jti``, so every verify is a
first use), each with ``ath`` of the token; the verifier's clock is frozen at the
time the proofs were made, so the ``iat`` window never decides. Each round times a
batch of every case in a rotated order; a figure is the median over rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from joserfc import jws
from joserfc.jwk import ECKey, Key, OKPKey, RSAKey
from joserfc.util import urlsafe_b64decode

from keyturn.bench.machine import machine_caption
from keyturn.clock import FrozenClock, SystemClock
from keyturn.dpop import DpopVerifier, MemoryReplayCache, access_token_hash, check_proof
from keyturn.keys.records import generate_key
from keyturn.keys.ring import KeyRing
from keyturn.settings import Settings
from keyturn.tokens.access import TokenIssuer, TokenVerifier

URL = "https://api.example.com/resource"
CLIENT_KEYS: dict[str, Callable[[], Key]] = {
    "ES256": lambda: ECKey.generate_key("P-256"),
    "EdDSA": lambda: OKPKey.generate_key("Ed25519"),
    "RS256": lambda: RSAKey.generate_key(2048),
}


def make_proofs(key: Key, alg: str, token: str, iat: int, count: int) -> list[str]:
    """``count`` proofs for GET URL with ``ath`` of ``token``, each its own ``jti``."""
    header: dict[str, Any] = {"typ": "dpop+jwt", "alg": alg, "jwk": key.as_dict(private=False)}
    registry = jws.JWSRegistry(algorithms=[alg])
    ath = access_token_hash(token)
    proofs = []
    for _ in range(count):
        claims = f'{{"jti":"{uuid.uuid4()}","htm":"GET","htu":"{URL}","iat":{iat},"ath":"{ath}"}}'
        proofs.append(jws.serialize_compact(header, claims.encode(), key, registry=registry))
    return proofs


def signature_floor(key: Key, proof: str) -> Callable[[int], object]:
    """The bare ``cryptography`` check of ``proof``'s signature: the floor."""
    signing_input, _, segment = proof.rpartition(".")
    message, signature = signing_input.encode(), urlsafe_b64decode(segment.encode())
    public: Any = key.get_op_key("verify")
    if isinstance(public, ec.EllipticCurvePublicKey):
        half = len(signature) // 2
        der = encode_dss_signature(
            int.from_bytes(signature[:half], "big"), int.from_bytes(signature[half:], "big")
        )
        ecdsa = ec.ECDSA(hashes.SHA256())
        return lambda _: public.verify(der, message, ecdsa)
    if isinstance(public, rsa.RSAPublicKey):
        pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()
        return lambda _: public.verify(signature, message, pkcs1, sha256)
    return lambda _: public.verify(signature, message)


def time_sync(op: Callable[[int], object], n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        op(i)
    return (time.perf_counter() - start) / n * 1e6


def time_async(op: Callable[[int], Awaitable[object]], n: int) -> float:
    async def run() -> float:
        start = time.perf_counter()
        for i in range(n):
            await op(i)
        return (time.perf_counter() - start) / n * 1e6

    return asyncio.run(run())


def measure(alg: str, rounds: int, batch: int) -> dict[str, float]:
    """Median µs per call of each case for one client algorithm."""
    settings = Settings(issuer="https://auth.example.com", signing_alg=alg)  # type: ignore[arg-type]
    clock = SystemClock()
    record = generate_key(alg, now=clock.now())  # type: ignore[arg-type]
    ring = KeyRing.from_settings([record], settings, now=clock.now())
    token, _ = TokenIssuer(ring, settings, clock).issue("user-1", sid="sid-1", scope="read")
    tokens = TokenVerifier(ring, settings, clock, cache_entries=0)

    key = CLIENT_KEYS[alg]()
    frozen = FrozenClock(clock.now())
    verifier = DpopVerifier(MemoryReplayCache(frozen), frozen)
    proofs = make_proofs(key, alg, token, int(frozen.now()), rounds * batch + 1)
    now, window = frozen.now(), 60.0
    check_proof(proofs[-1], method="GET", url=URL, now=now, max_age=window, clock_skew=5)
    asyncio.run(verifier.verify(proofs[-1], method="GET", url=URL, access_token=token))

    def checks(i: int) -> object:
        return check_proof(
            proofs[i], method="GET", url=URL, now=now, max_age=window, clock_skew=5,
            access_token=token,
        )  # fmt: skip

    cursor = iter(range(rounds * batch))

    def full(_: int) -> Awaitable[object]:
        return verifier.verify(proofs[next(cursor)], method="GET", url=URL, access_token=token)

    floor = signature_floor(key, proofs[-1])
    cases: dict[str, Callable[[], float]] = {
        "floor": lambda: time_sync(floor, batch),
        "token": lambda: time_sync(lambda _: tokens.verify(token), batch),
        "checks": lambda: time_sync(lambda i: checks(i % len(proofs)), batch),
        "verify": lambda: time_async(full, batch),
    }
    samples: dict[str, list[float]] = {name: [] for name in cases}
    names = list(cases)
    for index in range(rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(cases[name]())
    result = {name: statistics.median(values) for name, values in samples.items()}
    result["ratio"] = statistics.median(
        (t + v) / t for t, v in zip(samples["token"], samples["verify"], strict=True)
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15, help="rounds (default 15)")
    parser.add_argument("--batch", type=int, default=200, help="calls per case per round")
    args = parser.parse_args()
    print(f"DPoP proof verification, median µs per call over {args.rounds} rounds")
    print(f"machine: {machine_caption(pinned=False)}")
    print()
    head = ("alg", "signature", "proof checks", "verify+cache", "access token", "DPoP/bearer")
    print(f"{head[0]:<6} {head[1]:>10} {head[2]:>13} {head[3]:>13} {head[4]:>13} {head[5]:>12}")
    for alg in CLIENT_KEYS:
        row = measure(alg, args.rounds, args.batch)
        print(
            f"{alg:<6} {row['floor']:>10.1f} {row['checks']:>13.1f} {row['verify']:>13.1f}"
            f" {row['token']:>13.1f} {row['ratio']:>11.2f}x"
        )
    print()
    print("signature: the bare cryptography verify of one proof's signature (the floor).")
    print("proof checks: check_proof (no cache); verify+cache: DpopVerifier.verify, memory.")
    print("access token: keyturn TokenVerifier, cache off, token signed with the same alg.")
    print("DPoP/bearer: (access token + verify+cache) / access token.")


if __name__ == "__main__":
    main()
