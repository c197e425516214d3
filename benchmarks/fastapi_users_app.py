"""The comparison app of ``benchmarks/claim.py``: fastapi-users, set up the way its
documentation sets it up, served the way ``keyturn serve`` serves keyturn.

fastapi-users (``pip install 'keyturn[bench]'``) with SQLAlchemy on a SQLite file
through aiosqlite, and its two usual authentication backends side by side:

* **JWT bearer**: ``BearerTransport`` + ``JWTStrategy`` (HS256). Each request
  decodes the JWT, then loads the user from the database.
* **cookie + database**: ``CookieTransport`` + ``DatabaseStrategy`` over
  ``SQLAlchemyAccessTokenDatabase``. Each request looks the token up, then the user.

Routes: ``POST /auth/register``, ``POST /auth/jwt/login``, ``POST /auth/db/login``
(fastapi-users' own routers), ``GET /whoami/jwt`` and ``GET /whoami/db`` (a small
JSON answer behind ``current_user(active=True)`` of one backend each, the
equivalent of keyturn's ``GET /auth/whoami``), and ``GET /livez`` (no auth, the
no-auth baseline, like keyturn's).

Run ``python benchmarks/fastapi_users_app.py --port P --database FILE``. The uvicorn
options are the ones ``keyturn serve`` uses (``keyturn.web.server.run``): one
worker, 127.0.0.1, ``server_header=False``, ``proxy_headers=False``,
``log_level="info"`` (access log on), uvloop and httptools when installed.
"""

# No ``from __future__ import annotations``: FastAPI must evaluate the
# ``Annotated[..., Depends(...)]`` hints, which name functions local to build_app.
import argparse
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import uvicorn
from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse
from fastapi_users import BaseUserManager, FastAPIUsers, UUIDIDMixin, schemas
from fastapi_users.authentication import (
    AuthenticationBackend,
    BearerTransport,
    CookieTransport,
    JWTStrategy,
)
from fastapi_users.authentication.strategy.db import DatabaseStrategy
from fastapi_users_db_sqlalchemy import SQLAlchemyBaseUserTableUUID, SQLAlchemyUserDatabase
from fastapi_users_db_sqlalchemy.access_token import (
    SQLAlchemyAccessTokenDatabase,
    SQLAlchemyBaseAccessTokenTableUUID,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

#: One secret per process: tokens never outlive the benchmark's server.
SECRET = secrets.token_urlsafe(32)
LIFETIME = 3600


class Base(DeclarativeBase):
    pass


class User(SQLAlchemyBaseUserTableUUID, Base):
    pass


class AccessToken(SQLAlchemyBaseAccessTokenTableUUID, Base):
    pass


class UserRead(schemas.BaseUser[uuid.UUID]):
    pass


class UserCreate(schemas.BaseUserCreate):
    pass


class UserManager(UUIDIDMixin, BaseUserManager[User, uuid.UUID]):
    reset_password_token_secret = SECRET
    verification_token_secret = SECRET


def build_app(database_url: str) -> FastAPI:
    """The app on ``database_url`` (tables created at start-up)."""
    engine = create_async_engine(database_url)
    session_maker = async_sessionmaker(engine, expire_on_commit=False)

    async def get_session() -> AsyncIterator[AsyncSession]:
        async with session_maker() as session:
            yield session

    async def get_user_db(session: Annotated[AsyncSession, Depends(get_session)]) -> Any:
        yield SQLAlchemyUserDatabase(session, User)

    async def get_token_db(session: Annotated[AsyncSession, Depends(get_session)]) -> Any:
        yield SQLAlchemyAccessTokenDatabase(session, AccessToken)

    async def get_user_manager(user_db: Annotated[Any, Depends(get_user_db)]) -> Any:
        yield UserManager(user_db)

    def jwt_strategy() -> JWTStrategy[User, uuid.UUID]:
        return JWTStrategy(secret=SECRET, lifetime_seconds=LIFETIME)

    def db_strategy(
        token_db: Annotated[Any, Depends(get_token_db)],
    ) -> DatabaseStrategy[Any, Any, Any]:
        return DatabaseStrategy(token_db, lifetime_seconds=LIFETIME)

    jwt_backend = AuthenticationBackend(
        name="jwt",
        transport=BearerTransport(tokenUrl="auth/jwt/login"),
        get_strategy=jwt_strategy,
    )
    db_backend = AuthenticationBackend(
        name="db",
        transport=CookieTransport(cookie_max_age=LIFETIME),
        get_strategy=db_strategy,
    )
    jwt_users = FastAPIUsers[User, uuid.UUID](get_user_manager, [jwt_backend])
    db_users = FastAPIUsers[User, uuid.UUID](get_user_manager, [db_backend])
    jwt_user = jwt_users.current_user(active=True)
    db_user = db_users.current_user(active=True)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
        yield
        await engine.dispose()

    app = FastAPI(lifespan=lifespan)
    app.include_router(jwt_users.get_auth_router(jwt_backend), prefix="/auth/jwt")
    app.include_router(db_users.get_auth_router(db_backend), prefix="/auth/db")
    app.include_router(jwt_users.get_register_router(UserRead, UserCreate), prefix="/auth")

    @app.get("/livez")
    async def livez() -> JSONResponse:
        return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})

    @app.get("/whoami/jwt")
    async def whoami_jwt(user: Annotated[User, Depends(jwt_user)]) -> JSONResponse:
        return JSONResponse({"sub": str(user.id), "email": user.email, "via": "jwt"})

    @app.get("/whoami/db")
    async def whoami_db(user: Annotated[User, Depends(db_user)]) -> JSONResponse:
        return JSONResponse({"sub": str(user.id), "email": user.email, "via": "db"})

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database", required=True, help="SQLite file")
    args = parser.parse_args()
    uvicorn.run(
        build_app(f"sqlite+aiosqlite:///{args.database}"),
        host="127.0.0.1",
        port=args.port,
        server_header=False,
        proxy_headers=False,
        log_level="info",
    )


if __name__ == "__main__":
    main()
