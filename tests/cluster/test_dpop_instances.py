"""DPoP across instances (SPEC "Sender-constrained tokens"): two ``keyturn serve``
processes on one PostgreSQL and one real Redis. A proof accepted by one instance is
refused by the other (the ``jti`` replay cache is Redis), and a server nonce handed
out by one instance is accepted by the other (derived from the shared KEK)."""

from __future__ import annotations

from joserfc.jwk import ECKey
from tests.cluster.harness import ISSUER, Api, MakeCluster, unique_email
from tests.unit.dpop.proofs import Client

from keyturn.clock import SystemClock


def _key() -> Client:
    return Client(ECKey.generate_key("P-256"), "ES256", SystemClock())


def _dpop(key: Client, token: str, nonce: str) -> dict[str, str]:
    proof = key.proof("GET", f"{ISSUER}/auth/whoami", access_token=token, nonce=nonce)
    return {"Authorization": f"DPoP {token}", "DPoP": proof}


def test_proof_and_nonce_across_two_instances(make_cluster: MakeCluster) -> None:
    """Instance b refuses a proof instance a accepted (shared Redis replay cache), and
    accepts the nonce instance a handed out; a fresh proof on b is served."""
    cluster = make_cluster(2, args=("--password-grant", "--dpop-nonce"))
    key = _key()
    with Api(cluster.a) as a, Api(cluster.b) as b:
        email = a.register(unique_email("dpop"))
        form = {
            "grant_type": "password",
            "username": email,
            "password": "correct horse battery staple",
        }
        asked = a.http.post(
            "/oauth/token", data=form, headers={"DPoP": key.proof("POST", f"{ISSUER}/oauth/token")}
        )
        assert asked.status_code == 400, asked.text
        assert asked.json()["error"] == "use_dpop_nonce"
        nonce = asked.headers["dpop-nonce"]
        # The nonce of instance a is good on instance b.
        proof = key.proof("POST", f"{ISSUER}/oauth/token", nonce=nonce)
        issued = b.http.post("/oauth/token", data=form, headers={"DPoP": proof})
        assert issued.status_code == 200, issued.text
        assert issued.json()["token_type"] == "DPoP"
        token = issued.json()["access_token"]

        headers = _dpop(key, token, nonce)
        first = a.http.get("/auth/whoami", headers=headers)
        assert first.status_code == 200, first.text
        replayed = b.http.get("/auth/whoami", headers=headers)
        assert replayed.status_code == 401, replayed.text
        assert replayed.headers["www-authenticate"].startswith('DPoP error="invalid_dpop_proof"')
        again = a.http.get("/auth/whoami", headers=headers)
        assert again.status_code == 401

        fresh = b.http.get("/auth/whoami", headers=_dpop(key, token, nonce))
        assert fresh.status_code == 200, fresh.text
        as_bearer = b.http.get("/auth/whoami", headers={"Authorization": f"Bearer {token}"})
        assert as_bearer.status_code == 401
