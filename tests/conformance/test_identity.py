"""The ACS Identity wire (docs/wire.md §1-§3) as the official Python SDK, unmodified, drives it: users, tokens and
their scopes and lifetimes, the 400/401/404 errors, revocation and deletion (checked at Tessera's ``/access/me``),
and account isolation."""

import base64
import hashlib
import hmac
import os
import uuid
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from azure.communication.identity import CommunicationIdentityClient, CommunicationUserIdentifier
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from conftest import (
    CLIENT_OPTIONS,
    HTTP_TIMEOUT,
    SCOPE_SETS,
    Capture,
    check_token,
    error_of,
    identity_parts,
    sdk_error,
    unknown_user_id,
)

#: The default lifetime of a token on the ACS wire, in minutes.
DEFAULT_MINUTES = 1440


def scope_ids(scopes):
    """A test id for a scope set."""
    return "+".join(scopes)


def user_id(user):
    """The raw id of an SDK user."""
    return user.properties["id"]


def check_identity(identity, expected_id):
    """An answered identity object: ``{"id": …}`` (docs/wire.md §1.1). Fields that Tessera adds beside ``id`` (its
    ``kind``, ``createdAt``…) are allowed: the SDK reads only ``id``."""
    assert isinstance(identity, dict), identity
    assert identity.get("id") == expected_id, identity


# ---- create_user ----


def test_create_user(client):
    capture = Capture()
    user = client.create_user(raw_response_hook=capture)
    status, _, _ = capture.last
    assert status == 201
    body = capture.json()
    assert set(body) == {"identity"}, body
    check_identity(body["identity"], user_id(user))
    assert user.raw_id == user_id(user)
    identity_parts(user_id(user))


def test_users_are_distinct_and_carry_their_accounts_guid(client, client_b):
    first, second = client.create_user(), client.create_user()
    other = client_b.create_user()
    account_1, user_1 = identity_parts(user_id(first))
    account_2, user_2 = identity_parts(user_id(second))
    account_b, _ = identity_parts(user_id(other))
    assert account_1 == account_2, "users of one account share its guid"
    assert account_1 != account_b, "accounts have different guids"
    assert user_1 != user_2


# ---- create_user_and_token ----


@pytest.mark.parametrize("scopes", SCOPE_SETS, ids=scope_ids)
def test_create_user_and_token(client, me, scopes):
    capture = Capture()
    user, token = client.create_user_and_token(scopes, raw_response_hook=capture)
    status, _, _ = capture.last
    assert status == 201
    body = capture.json()
    assert set(body) == {"identity", "accessToken"}, body
    check_identity(body["identity"], user_id(user))
    assert body["accessToken"] == {"token": token.token, "expiresOn": token.expires_on}
    identity_parts(user_id(user))
    check_token(token.token, token.expires_on, DEFAULT_MINUTES)
    me.accepts(token.token, user_id(user), scopes)


@pytest.mark.parametrize("minutes", [60, 90, 1440])
def test_create_user_and_token_with_custom_expiry(client, me, minutes):
    user, token = client.create_user_and_token(["chat"], token_expires_in=timedelta(minutes=minutes))
    check_token(token.token, token.expires_on, minutes)
    me.accepts(token.token, user_id(user), ["chat"])


@pytest.mark.parametrize("minutes", [59, 1441, 0, 100000])
def test_create_user_and_token_with_invalid_expiry(client, minutes):
    with pytest.raises(HttpResponseError) as ex:
        client.create_user_and_token(["chat"], token_expires_in=timedelta(minutes=minutes))
    sdk_error(ex, 400, HttpResponseError)


def test_create_user_and_token_with_an_unknown_scope(client):
    with pytest.raises(HttpResponseError) as ex:
        client.create_user_and_token(["chat", "teleport"])
    sdk_error(ex, 400, HttpResponseError)


def test_create_user_and_token_without_scopes_raises(client):
    # As the SDK's own test_create_user_and_token_with_no_scopes: the SDK sends `{}`; whether the server answers
    # 400 or creates a user without a token (the SDK then fails client-side), the call raises.
    with pytest.raises(Exception):
        client.create_user_and_token(scopes=None)


# ---- get_token ----


@pytest.mark.parametrize("scopes", SCOPE_SETS, ids=scope_ids)
def test_get_token(client, me, scopes):
    user = client.create_user()
    capture = Capture()
    token = client.get_token(user, scopes, raw_response_hook=capture)
    status, _, _ = capture.last
    assert status == 200
    assert capture.json() == {"token": token.token, "expiresOn": token.expires_on}
    check_token(token.token, token.expires_on, DEFAULT_MINUTES)
    me.accepts(token.token, user_id(user), scopes)


@pytest.mark.parametrize("minutes", [60, 90, 1440])
def test_get_token_with_custom_expiry(client, me, minutes):
    user = client.create_user()
    token = client.get_token(user, ["voip"], token_expires_in=timedelta(minutes=minutes))
    check_token(token.token, token.expires_on, minutes)
    me.accepts(token.token, user_id(user), ["voip"])


@pytest.mark.parametrize("minutes", [59, 1441, 0, 100000])
def test_get_token_with_invalid_expiry(client, minutes):
    user = client.create_user()
    with pytest.raises(HttpResponseError) as ex:
        client.get_token(user, ["chat"], token_expires_in=timedelta(minutes=minutes))
    sdk_error(ex, 400, HttpResponseError)


def test_get_token_with_an_unknown_scope(client):
    user = client.create_user()
    with pytest.raises(HttpResponseError) as ex:
        client.get_token(user, ["teleport"])
    sdk_error(ex, 400, HttpResponseError)
    with pytest.raises(HttpResponseError) as ex:
        client.get_token(user, ["chat", "CHAT.JOIN.EVERYTHING"])
    sdk_error(ex, 400, HttpResponseError)


def test_get_token_without_scopes(client):
    # The SDK sends `{}` (its own test_get_token_with_no_scopes expects an error).
    user = client.create_user()
    with pytest.raises(HttpResponseError) as ex:
        client.get_token(user, scopes=None)
    sdk_error(ex, 400, HttpResponseError)


def test_tokens_of_one_user_are_distinct(client, me):
    user, first = client.create_user_and_token(["chat"])
    second = client.get_token(user, ["chat"])
    assert first.token != second.token
    me.accepts(first.token, user_id(user), ["chat"])
    me.accepts(second.token, user_id(user), ["chat"])


# ---- revoke_tokens ----


def test_revoke_tokens(client, me):
    user, old = client.create_user_and_token(["chat"])
    other_scopes = client.get_token(user, ["voip", "voip.join"], token_expires_in=timedelta(minutes=60))
    bystander, bystander_token = client.create_user_and_token(["chat"])
    me.accepts(old.token, user_id(user), ["chat"])
    me.accepts(other_scopes.token, user_id(user), ["voip", "voip.join"])

    capture = Capture()
    assert client.revoke_tokens(user, raw_response_hook=capture) is None
    status, _, text = capture.last
    assert (status, text) == (204, "")

    me.refuses(old.token)
    me.refuses(other_scopes.token)
    # Only this user's tokens.
    me.accepts(bystander_token.token, user_id(bystander), ["chat"])
    # The identity lives on: a new token works, the old ones stay refused.
    new = client.get_token(user, ["chat"])
    check_token(new.token, new.expires_on, DEFAULT_MINUTES)
    me.accepts(new.token, user_id(user), ["chat"])
    me.refuses(old.token)


def test_revoke_tokens_twice(client, me):
    user, old = client.create_user_and_token(["chat"])
    client.revoke_tokens(user)
    capture = Capture()
    client.revoke_tokens(user, raw_response_hook=capture)
    assert capture.last[0] == 204
    me.refuses(old.token)
    me.accepts(client.get_token(user, ["chat"]).token, user_id(user), ["chat"])


def test_revoke_tokens_of_a_user_without_tokens(client):
    user = client.create_user()
    capture = Capture()
    client.revoke_tokens(user, raw_response_hook=capture)
    assert capture.last[0] == 204


# ---- delete_user ----


def test_delete_user(client, me):
    user, token = client.create_user_and_token(["chat", "voip"])
    me.accepts(token.token, user_id(user), ["chat", "voip"])

    capture = Capture()
    assert client.delete_user(user, raw_response_hook=capture) is None
    status, _, text = capture.last
    assert (status, text) == (204, "")

    me.refuses(token.token)
    with pytest.raises(ResourceNotFoundError) as ex:
        client.get_token(user, ["chat"])
    sdk_error(ex, 404, ResourceNotFoundError)
    with pytest.raises(ResourceNotFoundError) as ex:
        client.revoke_tokens(user)
    sdk_error(ex, 404, ResourceNotFoundError)
    with pytest.raises(ResourceNotFoundError) as ex:
        client.delete_user(user)
    sdk_error(ex, 404, ResourceNotFoundError)
    me.refuses(token.token)


def test_unknown_identity(client):
    known = client.create_user()
    # Never created in this account; and in an account that does not exist.
    for raw_id in [unknown_user_id(user_id(known)), f"8:acs:{uuid.uuid4()}_{uuid.uuid4()}"]:
        unknown = CommunicationUserIdentifier(raw_id)
        with pytest.raises(ResourceNotFoundError) as ex:
            client.get_token(unknown, ["chat"])
        sdk_error(ex, 404, ResourceNotFoundError)
        with pytest.raises(ResourceNotFoundError) as ex:
            client.revoke_tokens(unknown)
        sdk_error(ex, 404, ResourceNotFoundError)
        with pytest.raises(ResourceNotFoundError) as ex:
            client.delete_user(unknown)
        sdk_error(ex, 404, ResourceNotFoundError)


# ---- accounts are isolated ----


def test_an_identity_of_another_account(client, client_b, me):
    user_b, token_b = client_b.create_user_and_token(["chat"])
    calls = {
        "get_token": lambda: client.get_token(user_b, ["chat"]),
        "revoke_tokens": lambda: client.revoke_tokens(user_b),
        "delete_user": lambda: client.delete_user(user_b),
    }
    for name, call in calls.items():
        with pytest.raises(HttpResponseError) as ex:
            call()
        status = ex.value.status_code
        assert status in (403, 404), f"{name} on another account's identity: HTTP {status}"
        sdk_error(ex, status, ResourceNotFoundError if status == 404 else HttpResponseError)
    # Nothing changed: B's token still works, B still issues tokens for its user, and A revoked nothing.
    me.accepts(token_b.token, user_id(user_b), ["chat"])
    me.accepts(client_b.get_token(user_b, ["voip"]).token, user_id(user_b), ["voip"])
    me.accepts(token_b.token, user_id(user_b), ["chat"])


# ---- HMAC authentication ----


def random_key():
    """A well-formed access key that no account has."""
    return base64.b64encode(os.urandom(32)).decode()


def test_a_wrong_access_key(endpoint, client):
    wrong = CommunicationIdentityClient.from_connection_string(
        f"endpoint={endpoint}/;accesskey={random_key()}", **CLIENT_OPTIONS
    )
    with pytest.raises(ClientAuthenticationError) as ex:
        wrong.create_user()
    sdk_error(ex, 401, ClientAuthenticationError)
    with pytest.raises(ClientAuthenticationError) as ex:
        wrong.create_user_and_token(["chat"])
    sdk_error(ex, 401, ClientAuthenticationError)
    # Authentication comes first, so a wrong key learns nothing about an existing identity either.
    user = client.create_user()
    with pytest.raises(ClientAuthenticationError) as ex:
        wrong.get_token(user, ["chat"])
    sdk_error(ex, 401, ClientAuthenticationError)
    with pytest.raises(ClientAuthenticationError) as ex:
        wrong.delete_user(user)
    sdk_error(ex, 401, ClientAuthenticationError)
    client.get_token(user, ["chat"])


def test_the_endpoint_and_key_forms_the_sdk_accepts(endpoint, access_key):
    # AzureKeyCredential and a bare key string; an endpoint with a trailing slash, which the SDK signs into the
    # host (docs/wire.md §2.3: the server accepts `Host` and `Host/`).
    for base, credential in [
        (endpoint, AzureKeyCredential(access_key)),
        (endpoint, access_key),
        (endpoint + "/", AzureKeyCredential(access_key)),
    ]:
        c = CommunicationIdentityClient(base, credential, **CLIENT_OPTIONS)
        user, token = c.create_user_and_token(["chat"])
        c.get_token(user, ["voip"])
        c.revoke_tokens(user)
        c.delete_user(user)


def tamper(header, value):
    """A ``raw_request_hook`` that changes a header after the SDK signed the request."""

    def hook(pipeline_request):
        if value is None:
            pipeline_request.http_request.headers.pop(header, None)
        else:
            pipeline_request.http_request.headers[header] = value

    return hook


@pytest.mark.parametrize(
    "header,value",
    [
        ("x-ms-date", format_datetime(datetime.now(timezone.utc) + timedelta(seconds=61), usegmt=True)),
        ("x-ms-content-sha256", "RBNvo1WzZ4oRRq0W9+hknpT7T8If536DEMBg9hyq/4o="),  # SHA-256 of "{}"
        (
            "Authorization",
            "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature="
            "1vJEY5lWnAA9OR2vz0GF+dgwpucJzWYcCu7VfR4zMAI=",
        ),
        ("Authorization", None),
        ("x-ms-date", None),
    ],
    ids=["date-changed", "content-hash-changed", "other-signature", "no-authorization", "no-date"],
)
def test_a_request_changed_after_signing_is_refused(client, header, value):
    with pytest.raises(ClientAuthenticationError) as ex:
        client.create_user(raw_request_hook=tamper(header, value))
    sdk_error(ex, 401, ClientAuthenticationError)


def test_a_body_changed_after_signing_is_refused(client):
    user = client.create_user()

    def hook(pipeline_request):
        # Same length, other scope: the signed x-ms-content-sha256 no longer matches.
        request = pipeline_request.http_request
        body = request.body if isinstance(request.body, str) else request.body.decode()
        assert '"chat"' in body, body
        request.set_bytes_body(body.replace('"chat"', '"voip"').encode())

    with pytest.raises(ClientAuthenticationError) as ex:
        client.get_token(user, ["chat"], raw_request_hook=hook)
    sdk_error(ex, 401, ClientAuthenticationError)


def test_a_user_token_is_not_a_service_credential(client, http, endpoint):
    _, token = client.create_user_and_token(["chat", "voip"])
    resp = http.post(
        endpoint + "/identities?api-version=2023-10-01",
        headers={"Authorization": f"Bearer {token.token}"},
        json={},
        timeout=HTTP_TIMEOUT,
    )
    assert resp.status_code in (401, 403), f"{resp.status_code} {resp.text}"
    error_of(resp.headers, resp.text)


def signed_post(http, endpoint, access_key, path, date):
    """``POST path`` with an empty body, signed as docs/wire.md §2.3 says (for dates the SDK would not send)."""
    host = endpoint.split("://", 1)[1]
    content_hash = base64.b64encode(hashlib.sha256(b"").digest()).decode()
    x_ms_date = format_datetime(date, usegmt=True)
    string_to_sign = f"POST\n{path}\n{x_ms_date};{host};{content_hash}"
    signature = base64.b64encode(
        hmac.new(base64.b64decode(access_key), string_to_sign.encode(), hashlib.sha256).digest()
    ).decode()
    return http.post(
        endpoint + path,
        headers={
            "x-ms-date": x_ms_date,
            "x-ms-content-sha256": content_hash,
            "Authorization": f"HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={signature}",
        },
        data=b"",
        timeout=HTTP_TIMEOUT,
    )


def test_a_signature_outside_the_date_window_is_refused(http, endpoint, access_key):
    path = "/identities?api-version=2023-10-01"
    now = datetime.now(timezone.utc)
    # The signer is right: signed now, it creates an identity.
    resp = signed_post(http, endpoint, access_key, path, now)
    assert resp.status_code == 201, f"{resp.status_code} {resp.text}"
    identity_parts(resp.json()["identity"]["id"])
    # A captured request replayed hours later, or dated far ahead, is refused.
    for skew in [timedelta(hours=-2), timedelta(hours=2)]:
        resp = signed_post(http, endpoint, access_key, path, now + skew)
        assert resp.status_code == 401, f"x-ms-date {skew}: {resp.status_code} {resp.text}"
        error_of(resp.headers, resp.text)
