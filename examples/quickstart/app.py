from fastapi import FastAPI

from keyturn import Keyturn, Settings
from keyturn.web import CurrentPrincipal, install

kt = Keyturn(Settings(database_url="sqlite+aiosqlite:///quickstart.db"))
app = FastAPI(lifespan=kt.lifespan)
install(app, kt)  # /login, /auth/*, /oauth/token... and the caller on every request


@app.get("/hello")
async def hello(user: CurrentPrincipal) -> dict[str, str]:  # a session cookie or a bearer token
    return {"hello": user.email, "via": user.via}
