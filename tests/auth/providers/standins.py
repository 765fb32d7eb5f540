"""Local stand-ins of providers, served over real HTTP on free loopback ports:

* `FakeGitHub`: GitHub's OAuth 2 endpoints (authorize, access_token with PKCE) and its API's
  `/user` and `/user/emails`, as a GitHub Enterprise Server lays them out (`/api/v3`).
* `RogueOidc`: an OpenID provider that answers correctly unless a test tells it to misbehave
  (an id_token from another issuer, for another audience, without or with another nonce, ...):
  the guards are tested against the exact forgery they exist for.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

import uvicorn
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from devstack.ports import free_port


@contextmanager
def served(app: Any) -> Iterator[str]:
    """`app` on a free 127.0.0.1 port in a thread of its own; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name=f"standin-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("stand-in server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    code_challenge: str | None
    nonce: str | None
    account: dict[str, Any]


@dataclass
class _Endpoints:
    """What both stand-ins share: one client, codes that are single use and PKCE-checked."""

    client_id: str
    client_secret: str
    base_url: str = ""
    account: dict[str, Any] = field(default_factory=dict)
    codes: dict[str, Grant] = field(default_factory=dict)
    token_requests: int = 0

    def _authorize(self, request: Request, *, with_iss: bool = False) -> Response:
        q = request.query_params
        if q.get("client_id") != self.client_id:
            return JSONResponse({"error": "invalid_client"}, status_code=400)
        code = secrets.token_urlsafe(16)
        self.codes[code] = Grant(
            client_id=self.client_id,
            redirect_uri=q["redirect_uri"],
            code_challenge=q.get("code_challenge") if q.get("code_challenge_method") == "S256" else None,
            nonce=q.get("nonce"),
            account=dict(self.account),
        )
        params = {"code": code, "state": q.get("state", "")}
        if with_iss:
            params["iss"] = self.base_url
        return RedirectResponse(f"{q['redirect_uri']}?{urlencode(params)}", status_code=302)

    async def _redeem(self, request: Request) -> Grant | None:
        """The grant of a valid code (removed: single use), or None."""
        self.token_requests += 1
        form = dict(parse_qsl((await request.body()).decode()))
        client_id, secret = form.get("client_id"), form.get("client_secret")
        authorization = request.headers.get("authorization", "")
        if authorization.startswith("Basic "):
            client_id, _, secret = base64.b64decode(authorization[6:]).decode().partition(":")
        if client_id != self.client_id or secret != self.client_secret:
            return None
        grant = self.codes.pop(str(form.get("code")), None)
        if grant is None or grant.redirect_uri != form.get("redirect_uri"):
            return None
        verifier = str(form.get("code_verifier") or "")
        if grant.code_challenge is None or _s256(verifier) != grant.code_challenge:
            return None
        return grant


class FakeGitHub(_Endpoints):
    """GitHub (Enterprise Server layout): the account is `{id, login, name, emails: [...]}`."""

    def __init__(self, client_id: str, client_secret: str) -> None:
        super().__init__(client_id, client_secret)
        self.tokens: dict[str, dict[str, Any]] = {}

    def app(self) -> Starlette:
        async def authorize(request: Request) -> Response:
            return self._authorize(request)

        async def access_token(request: Request) -> Response:
            grant = await self._redeem(request)
            if grant is None:
                # GitHub answers errors of this endpoint with a 200.
                return JSONResponse({"error": "bad_verification_code"})
            token = "gho_" + secrets.token_urlsafe(20)
            self.tokens[token] = grant.account
            return JSONResponse(
                {"access_token": token, "token_type": "bearer", "scope": "read:user,user:email"}
            )

        def _account(request: Request) -> dict[str, Any] | None:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            return self.tokens.get(token) if scheme.lower() in ("bearer", "token") else None

        async def user(request: Request) -> Response:
            account = _account(request)
            if account is None:
                return JSONResponse({"message": "Bad credentials"}, status_code=401)
            return JSONResponse({"id": account["id"], "login": account["login"], "name": account.get("name")})

        async def emails(request: Request) -> Response:
            account = _account(request)
            if account is None:
                return JSONResponse({"message": "Bad credentials"}, status_code=401)
            return JSONResponse(account["emails"])

        return Starlette(
            routes=[
                Route("/login/oauth/authorize", authorize),
                Route("/login/oauth/access_token", access_token, methods=["POST"]),
                Route("/api/v3/user", user),
                Route("/api/v3/user/emails", emails),
            ]
        )


class RogueOidc(_Endpoints):
    """An OpenID provider whose id_token claims a test may `tamper` with (a value of None drops
    the claim); `advertise_iss` and `send_iss` control RFC 9207's parameter."""

    def __init__(self, client_id: str, client_secret: str) -> None:
        super().__init__(client_id, client_secret)
        self.key = RSAKey.generate_key(2048, parameters={"kid": "rogue-1", "use": "sig"})
        self.tamper: dict[str, Any] = {}
        self.advertise_iss = True
        self.send_iss = True
        self.discovery_issuer: str | None = None
        self.token_down = False

    def reset(self) -> None:
        self.tamper = {}
        self.advertise_iss = self.send_iss = True
        self.discovery_issuer = None
        self.token_down = False

    def app(self) -> Starlette:
        async def discovery(request: Request) -> Response:
            base = self.base_url
            return JSONResponse(
                {
                    "issuer": self.discovery_issuer or base,
                    "authorization_endpoint": base + "/authorize",
                    "token_endpoint": base + "/token",
                    "jwks_uri": base + "/jwks",
                    "response_types_supported": ["code"],
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "code_challenge_methods_supported": ["S256"],
                    "authorization_response_iss_parameter_supported": self.advertise_iss,
                }
            )

        async def authorize(request: Request) -> Response:
            return self._authorize(request, with_iss=self.send_iss)

        async def token(request: Request) -> Response:
            if self.token_down:
                return Response("<html>502 Bad Gateway</html>", status_code=502, media_type="text/html")
            grant = await self._redeem(request)
            if grant is None:
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            now = int(time.time())
            claims: dict[str, Any] = {
                "iss": self.base_url,
                "aud": self.client_id,
                "iat": now,
                "exp": now + 300,
                "nonce": grant.nonce,
                **grant.account,
            }
            for name, value in self.tamper.items():
                if value is None:
                    claims.pop(name, None)
                else:
                    claims[name] = value
            id_token = jwt.encode({"alg": "RS256", "kid": "rogue-1"}, claims, self.key)
            return JSONResponse(
                {
                    "access_token": secrets.token_urlsafe(16),
                    "token_type": "Bearer",
                    "expires_in": 300,
                    "id_token": id_token,
                }
            )

        async def jwks(request: Request) -> Response:
            return JSONResponse({"keys": [self.key.as_dict(private=False)]})

        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", discovery),
                Route("/authorize", authorize),
                Route("/token", token, methods=["POST"]),
                Route("/jwks", jwks),
            ]
        )
