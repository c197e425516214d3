// openid-client v6 (a certified relying-party library) against a live keyturn serve:
// discovery, authorization code + PKCE + nonce, ID token validation, userinfo,
// refresh, then RP-initiated logout. Reads one JSON object on stdin
// ({issuer, client_id, client_secret, redirect_uri, email, password}) and prints
// one JSON object with what it saw. Any failed check throws (exit code 1).
import * as client from "openid-client";

const input = JSON.parse(await new Promise((resolve) => {
  let text = "";
  process.stdin.on("data", (chunk) => { text += chunk; });
  process.stdin.on("end", () => resolve(text));
}));

const config = await client.discovery(
  new URL(input.issuer),
  input.client_id,
  input.client_secret,
  undefined,
  { execute: [client.allowInsecureRequests] }, // http://127.0.0.1 in the test
);

// The user signs in at keyturn (the JSON API stands in for the login page).
const login = await fetch(new URL("/auth/login", input.issuer), {
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ email: input.email, password: input.password }),
});
if (login.status !== 200) throw new Error(`login: ${login.status}`);
const cookie = login.headers.getSetCookie()
  .map((header) => header.split(";")[0])
  .find((pair) => pair.startsWith("__Host-keyturn_session="));

const codeVerifier = client.randomPKCECodeVerifier();
const state = client.randomState();
const nonce = client.randomNonce();
const authorizationUrl = client.buildAuthorizationUrl(config, {
  redirect_uri: input.redirect_uri,
  scope: "openid email offline_access",
  code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
  code_challenge_method: "S256",
  state,
  nonce,
});
const answer = await fetch(authorizationUrl, { headers: { cookie }, redirect: "manual" });
if (answer.status !== 303) throw new Error(`authorize: ${answer.status}`);
const callback = new URL(answer.headers.get("location"));

const tokens = await client.authorizationCodeGrant(config, callback, {
  pkceCodeVerifier: codeVerifier,
  expectedState: state,
  expectedNonce: nonce,
  idTokenExpected: true,
});
const claims = tokens.claims();
const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);

const logoutUrl = client.buildEndSessionUrl(config, {
  id_token_hint: tokens.id_token,
  post_logout_redirect_uri: input.post_logout_redirect_uri,
  state: "bye",
});
const logout = await fetch(logoutUrl, { headers: { cookie }, redirect: "manual" });
const whoami = await fetch(new URL("/auth/whoami", input.issuer), { headers: { cookie } });

console.log(JSON.stringify({
  issuer: config.serverMetadata().issuer,
  id_token_alg: JSON.parse(Buffer.from(tokens.id_token.split(".")[0], "base64url")).alg,
  claims,
  userinfo,
  refreshed: typeof refreshed.access_token === "string" && refreshed.access_token !== tokens.access_token,
  logout_status: logout.status,
  logout_location: logout.headers.get("location"),
  whoami_after_logout: whoami.status,
}));
