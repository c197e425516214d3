// openid-client v6 runs the authorization code flow with PKCE and DPoP against a
// live keyturn serve, for tests/interop/test_openid_client_dpop.py.
//
// argv[2] is a JSON job: {issuer, client_id, redirect_uri, scope}. The script prints
// one JSON line {authorization_url}, reads the callback URL (the browser's part,
// played by the Python test) as one line on stdin, then exchanges the code with a
// DPoP proof, calls /auth/whoami and /oauth/userinfo with the bound token, refreshes with a proof of
// the same key, calls whoami again, and prints one JSON line with what it saw.
import * as client from "openid-client";
import { createInterface } from "node:readline";

const job = JSON.parse(process.argv[2]);
const issuer = new URL(job.issuer);
const config = await client.discovery(issuer, job.client_id, undefined, client.None(), {
  execute: [client.allowInsecureRequests],
});
const keyPair = await client.randomDPoPKeyPair("ES256");
const dpop = client.getDPoPHandle(config, keyPair);

const verifier = client.randomPKCECodeVerifier();
const state = client.randomState();
const url = client.buildAuthorizationUrl(config, {
  redirect_uri: job.redirect_uri,
  scope: job.scope,
  code_challenge: await client.calculatePKCECodeChallenge(verifier),
  code_challenge_method: "S256",
  state,
});
console.log(JSON.stringify({ authorization_url: url.href }));

const lines = createInterface({ input: process.stdin });
const callback = await new Promise((resolve) => lines.once("line", resolve));
lines.close();

const tokens = await client.authorizationCodeGrant(
  config,
  new URL(callback),
  { pkceCodeVerifier: verifier, expectedState: state },
  undefined,
  { DPoP: dpop },
);
const whoamiUrl = new URL("/auth/whoami", issuer);
const call = async (token) => {
  const response = await client.fetchProtectedResource(
    config, token, whoamiUrl, "GET", undefined, undefined, { DPoP: dpop },
  );
  return { status: response.status, body: await response.json() };
};
const first = await call(tokens.access_token);
// userinfo (OIDC, #13) with the DPoP-bound token: openid-client sends the proof.
const userinfo = await client.fetchUserInfo(config, tokens.access_token, tokens.claims().sub, {
  DPoP: dpop,
});
const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token, undefined, {
  DPoP: dpop,
});
const second = await call(refreshed.access_token);
console.log(
  JSON.stringify({
    token_type: tokens.token_type,
    access_token: tokens.access_token,
    whoami: first,
    userinfo,
    refreshed_token_type: refreshed.token_type,
    refreshed_access_token: refreshed.access_token,
    whoami_after_refresh: second,
    public_jwk: await crypto.subtle.exportKey("jwk", keyPair.publicKey),
  }),
);
