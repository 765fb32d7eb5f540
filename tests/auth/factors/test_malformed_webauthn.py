"""Every route that accepts a PublicKeyCredential refuses a malformed one with a 4xx problem
document, never a 500: wrong JSON types at any depth, undecodable base64, clientDataJSON that is
not a client data object. Each body answers a live ceremony, so the parsing is reached."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from shared.access_tokens import b64url_encode
from tests.auth.factors.authenticator import SoftAuthenticator
from tests.auth.factors.helpers import auth_header, enrol_passkey
from tests.auth.helpers import PREFIX, AuthApp, login, signup

Credential = dict[str, Any]


def _set(path: str, value: object) -> Callable[[Credential], object]:
    def mutate(credential: Credential) -> object:
        *parents, last = path.split(".")
        target: Any = credential
        for name in parents:
            target = target[name]
        target[last] = value
        return credential

    return mutate


def _drop(path: str) -> Callable[[Credential], object]:
    def mutate(credential: Credential) -> object:
        *parents, last = path.split(".")
        target: Any = credential
        for name in parents:
            target = target[name]
        del target[last]
        return credential

    return mutate


def _client_data(value: object) -> Callable[[Credential], object]:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return _set("response.clientDataJSON", b64url_encode(raw))


MALFORMED: dict[str, Callable[[Credential], object]] = {
    "client data a number": _set("response.clientDataJSON", 5),
    "client data null": _set("response.clientDataJSON", None),
    "client data an object": _set("response.clientDataJSON", {"challenge": "x"}),
    "client data a list": _set("response.clientDataJSON", ["x"]),
    "client data not base64": _set("response.clientDataJSON", "!!!*"),
    "client data not JSON": _client_data(b"\xff\xfe not json"),
    "client data a JSON list": _client_data([1, 2]),
    "client data without challenge": _client_data({"type": "webauthn.get", "origin": "x"}),
    "challenge a number": _client_data({"type": "webauthn.get", "challenge": 5, "origin": "x"}),
    "challenge an object": _client_data({"type": "webauthn.get", "challenge": {}, "origin": "x"}),
    "response a string": _set("response", "x"),
    "response a list": _set("response", []),
    "no response": _drop("response"),
    "id a number": _set("id", 5),
    "rawId a list": _set("rawId", [1]),
    "no rawId": _drop("rawId"),
    "rawId not base64": _set("rawId", "!!!*"),
    "type a number": _set("type", 5),
    "userHandle a number": _set("response.userHandle", 5),
    "transports a string": _set("response.transports", "usb"),
    "authenticatorAttachment a number": _set("authenticatorAttachment", 5),
    "clientExtensionResults a string": _set("clientExtensionResults", "x"),
    "empty": lambda credential: {},
    "a list": lambda credential: [credential],
    "a string": lambda credential: "credential",
}
ASSERTIONS = {
    **MALFORMED,
    "authenticatorData a number": _set("response.authenticatorData", 5),
    "authenticatorData too short": _set("response.authenticatorData", "AAAA"),
    "no authenticatorData": _drop("response.authenticatorData"),
    "signature a list": _set("response.signature", []),
    "signature not base64": _set("response.signature", "!!!*"),
}
ATTESTATIONS = {
    **MALFORMED,
    "attestationObject a number": _set("response.attestationObject", 5),
    "attestationObject not CBOR": _set("response.attestationObject", "AAAA"),
    "attestationObject CBOR but not a map": _set("response.attestationObject", b64url_encode(b"\x01")),
    "no attestationObject": _drop("response.attestationObject"),
    "client data of a create with a number challenge": _client_data(
        {"type": "webauthn.create", "challenge": 5, "origin": "x"}
    ),
}


def _is_refusal(response: httpx.Response) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")


@pytest.fixture
async def enrolled(auth: AuthApp, client: httpx.AsyncClient) -> tuple[str, str, SoftAuthenticator]:
    email, verified = await signup(client, auth.settings)
    key = SoftAuthenticator()
    token = verified.json()["access_token"]
    assert (await enrol_passkey(client, token, key)).status_code == 201
    return email, token, key


@pytest.mark.parametrize("case", ASSERTIONS)
async def test_passwordless_sign_in(
    client: httpx.AsyncClient, enrolled: tuple[str, str, SoftAuthenticator], case: str
) -> None:
    _, _, key = enrolled
    options = (await client.post(f"{PREFIX}/passkeys/options")).json()
    body = ASSERTIONS[case](copy.deepcopy(key.get(options)))
    _is_refusal(await client.post(f"{PREFIX}/passkeys/authenticate", json={"credential": body}))


@pytest.mark.parametrize("case", ASSERTIONS)
async def test_second_factor(
    client: httpx.AsyncClient, enrolled: tuple[str, str, SoftAuthenticator], case: str
) -> None:
    email, _, key = enrolled
    challenge = (await login(client, email)).json()
    body = ASSERTIONS[case](copy.deepcopy(key.get(challenge["webauthn"])))
    answer = await client.post(
        f"{PREFIX}/second-factor", json={"challenge": challenge["challenge"], "webauthn": body}
    )
    _is_refusal(answer)


@pytest.mark.parametrize("case", ASSERTIONS)
async def test_reauthentication(
    client: httpx.AsyncClient, enrolled: tuple[str, str, SoftAuthenticator], case: str
) -> None:
    _, token, key = enrolled
    options = (await client.post(f"{PREFIX}/reauthenticate/options", headers=auth_header(token))).json()
    body = ASSERTIONS[case](copy.deepcopy(key.get(options)))
    answer = await client.post(
        f"{PREFIX}/reauthenticate", json={"webauthn": body}, headers=auth_header(token)
    )
    _is_refusal(answer)


@pytest.mark.parametrize("case", ATTESTATIONS)
async def test_registration(
    client: httpx.AsyncClient, enrolled: tuple[str, str, SoftAuthenticator], case: str
) -> None:
    _, token, _ = enrolled
    options = (await client.post(f"{PREFIX}/factors/passkeys/options", headers=auth_header(token))).json()
    body = ATTESTATIONS[case](copy.deepcopy(SoftAuthenticator().create(options)))
    answer = await client.post(
        f"{PREFIX}/factors/passkeys", json={"name": "Key", "credential": body}, headers=auth_header(token)
    )
    _is_refusal(answer)
