// A single-page app signs in to keyturn with oidc-client-ts: the authorization
// code flow with PKCE for a public client, tokens kept in memory only.
// index.html loads oidc-client-ts's browser build (window.oidc), then config.js:
//   const KEYTURN = {authority: "https://auth.example", clientId: "…"};
// (tests/browser/test_oidc_client_ts.py serves all three and runs this in Chromium.)
const {UserManager, WebStorageStateStore, InMemoryWebStorage} = window.oidc;

const userManager = new UserManager({
  authority: KEYTURN.authority,
  client_id: KEYTURN.clientId,
  redirect_uri: location.origin + "/callback",
  silent_redirect_uri: location.origin + "/silent",
  post_logout_redirect_uri: location.origin + "/signed-out",
  scope: "openid email",
  loadUserInfo: true, // the profile also from /oauth/userinfo (CORS, bearer token)
  // The user and its tokens in memory, never in localStorage or sessionStorage.
  // (The sign-in's PKCE verifier and nonce wait in sessionStorage during the redirect.)
  userStore: new WebStorageStateStore({store: new InMemoryWebStorage()}),
});

// The nonce ties each ID token to the request that asked for it.
const nonce = () => ({nonce: crypto.randomUUID()});

const signIn = () => userManager.signinRedirect(nonce());

// A new access token without a page: with the refresh token when the user has
// one, else in a hidden iframe with prompt=none on the keyturn session.
const renew = () => userManager.signinSilent(nonce());

const signOut = () => userManager.signoutRedirect(); // ends the keyturn session

async function onLoad() {
  switch (location.pathname) {
    case "/callback": // back from keyturn's sign-in with ?code=…&state=…
      await userManager.signinRedirectCallback();
      history.replaceState(null, "", "/");
      break;
    case "/silent": // inside renew()'s iframe: hand the answer to the page
      await userManager.signinSilentCallback();
      break;
    case "/signed-out":
      await userManager.signoutRedirectCallback();
      break;
  }
  return userManager.getUser();
}

const ready = onLoad();
