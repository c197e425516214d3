"""A Flask app that signs its users in with keyturn (OpenID Connect, Authlib).

The guide (docs/guides/oidc.md) shows this file; tests/examples/test_sso_flask.py
runs it against a live ``keyturn serve``. Register it as a confidential client with
the redirect URI ``https://<this app>/auth/callback``, then::

    export OIDC_ISSUER=https://auth.example OIDC_CLIENT_ID=… OIDC_CLIENT_SECRET=…
    export FLASK_SECRET_KEY=…
    flask --app examples.sso.flask_app run
"""

import os

from authlib.integrations.flask_client import OAuth
from flask import Flask, redirect, session, url_for
from flask.typing import ResponseReturnValue
from markupsafe import escape

ISSUER = os.environ["OIDC_ISSUER"]  # keyturn's issuer URL

app = Flask(__name__)
app.secret_key = os.environ["FLASK_SECRET_KEY"]
oauth = OAuth(app)
oauth.register(
    "keyturn",
    server_metadata_url=ISSUER + "/.well-known/openid-configuration",
    client_id=os.environ["OIDC_CLIENT_ID"],
    client_secret=os.environ["OIDC_CLIENT_SECRET"],
    client_kwargs={"scope": "openid email", "code_challenge_method": "S256"},
)


@app.route("/")
def home() -> ResponseReturnValue:
    user = session.get("user")
    if user is None:
        return redirect(url_for("login"))
    return f"Signed in as {escape(user['email'])} (sub {escape(user['sub'])})"


@app.route("/login")
def login() -> ResponseReturnValue:
    return oauth.keyturn.authorize_redirect(url_for("callback", _external=True))


@app.route("/auth/callback")
def callback() -> ResponseReturnValue:
    token = oauth.keyturn.authorize_access_token()  # checks the ID token and nonce
    session["user"] = token["userinfo"]  # the ID token's claims
    session["id_token"] = token["id_token"]  # the id_token_hint when signing out
    return redirect("/")
