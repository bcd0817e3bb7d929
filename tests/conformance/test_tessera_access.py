"""Tessera's own routes for user tokens, with tokens the SDK obtained: ``GET /access/me`` refuses what is not a
live token of this server, and ``POST /access/:refreshAccessToken`` gives nothing for a token issued without a
session (the SDK cannot ask for one)."""

import base64
import json

from conftest import HTTP_TIMEOUT, error_of, jwt_payload


def b64url(data):
    """Unpadded base64url of JSON."""
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).rstrip(b"=").decode()


def test_me_describes_the_token(client, me):
    user, token = client.create_user_and_token(["chat.join", "voip.join"])
    body = me.accepts(token.token, user.properties["id"], ["chat.join", "voip.join"])
    assert body["expiresOn"] == token.expires_on


def test_me_without_a_token(http, endpoint):
    resp = http.get(endpoint + "/access/me", timeout=HTTP_TIMEOUT)
    assert resp.status_code == 401, resp.text
    assert resp.headers.get("WWW-Authenticate", "").startswith("Bearer"), resp.headers
    error_of(resp.headers, resp.text)


def test_me_refuses_what_is_not_a_live_token(client, me):
    _, token = client.create_user_and_token(["chat"])
    header, payload, signature = token.token.split(".")
    claims = jwt_payload(token.token)
    longer = dict(claims, exp=claims["exp"] + 86400)
    for forged in [
        "not-a-token",
        f"{header}.{payload}",
        f"{header}.{payload}.{signature[:-4]}AAAA",
        f"{header}.{b64url(longer)}.{signature}",
        f"{b64url({'alg': 'none', 'typ': 'JWT'})}.{payload}.",
    ]:
        me.refuses(forged)
    me.accepts(token.token)


def test_refresh_needs_a_session(client, http, endpoint, me):
    _, token = client.create_user_and_token(["chat"])
    resp = http.post(
        endpoint + "/access/:refreshAccessToken",
        headers={"Authorization": f"Bearer {token.token}"},
        json={"refreshToken": "bm8tc3VjaC1yZWZyZXNoLXRva2Vu"},
        timeout=HTTP_TIMEOUT,
    )
    assert 400 <= resp.status_code < 500, f"{resp.status_code} {resp.text}"
    error = error_of(resp.headers, resp.text)
    assert "token" not in json.loads(resp.text), error
    me.accepts(token.token)
