"""Fixtures of the ACS conformance suite: the official Python SDKs (azure-communication-identity 1.5.0 and
azure-communication-chat 1.3.0, unmodified) against a running Tessera.

The Rust harness (crates/server/tests/api/acs_conformance.rs) starts the server, creates two Communication accounts and
sets:

* ``TESSERA_ENDPOINT``: ``https://127.0.0.1:PORT``;
* ``TESSERA_CONNECTION_STRING``: account A's ``endpoint=https://127.0.0.1:PORT/;accesskey=<base64>``;
* ``TESSERA_CONNECTION_STRING_B``: the same for a second account, B;
* ``TESSERA_ACCESS_KEY``: account A's key (base64);
* ``REQUESTS_CA_BUNDLE``: the server's generated CA (PEM), which ``requests`` and so the SDK's sync transport use.

Every client is built with ``retry_total=0`` so that an error answer surfaces at once and a request is never sent
twice, and with short timeouts so that a hung server fails the suite instead of stalling it.
"""

import base64
import calendar
import json
import os
import re
import uuid
from datetime import datetime, timezone

import pytest
import requests
from azure.communication.identity import CommunicationIdentityClient
from azure.communication.identity._shared.utils import create_access_token

#: Client options: no retries, bounded waits.
CLIENT_OPTIONS = {"retry_total": 0, "connection_timeout": 10, "read_timeout": 60}

#: What every plain HTTP call of the suite waits at most, in seconds.
HTTP_TIMEOUT = 60

#: A lower-case or upper-case GUID.
GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

#: ``8:acs:<account guid>_<user guid>`` (docs/wire.md §1.2).
IDENTITY_ID = re.compile(rf"^8:acs:({GUID})_({GUID})$")

#: RFC 3339 UTC with milliseconds and ``Z``, as Tessera writes ``expiresOn`` (docs/wire.md §1.1).
EXPIRES_ON = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{3})Z$")

#: The scope sets of the SDK's own tests (``tests/utils.py`` ``token_scope_scenarios``), and the single scopes.
SCOPE_SETS = [
    ["voip", "chat"],
    ["chat", "chat.join", "chat.join.limited"],
    ["voip", "voip.join"],
    ["chat.join", "voip.join"],
    ["chat"],
    ["voip"],
    ["chat.join"],
    ["chat.join.limited"],
    ["voip.join"],
]


def _env(name):
    value = os.environ.get(name, "").strip()
    if not value:
        pytest.fail(
            f"{name} is not set: this suite runs against a live Tessera and is started by "
            "`cargo test -p tessera-server --test acs_conformance`, which sets it",
            pytrace=False,
        )
    return value


@pytest.fixture(scope="session")
def endpoint():
    """``https://127.0.0.1:PORT``, without a trailing slash."""
    return _env("TESSERA_ENDPOINT").rstrip("/")


@pytest.fixture(scope="session")
def connection_string():
    """Account A's connection string."""
    return _env("TESSERA_CONNECTION_STRING")


@pytest.fixture(scope="session")
def connection_string_b():
    """Account B's connection string."""
    return _env("TESSERA_CONNECTION_STRING_B")


@pytest.fixture(scope="session")
def access_key():
    """Account A's access key (base64)."""
    return _env("TESSERA_ACCESS_KEY")


@pytest.fixture(scope="session")
def ca_bundle():
    """The server's CA certificate file."""
    path = _env("REQUESTS_CA_BUNDLE")
    assert os.path.isfile(path), f"REQUESTS_CA_BUNDLE={path!r} is not a file"
    return path


@pytest.fixture(scope="session")
def client(connection_string, ca_bundle):
    """An identity client of account A, from its connection string."""
    return CommunicationIdentityClient.from_connection_string(connection_string, **CLIENT_OPTIONS)


@pytest.fixture(scope="session")
def client_b(connection_string_b, ca_bundle):
    """An identity client of account B, from its connection string."""
    return CommunicationIdentityClient.from_connection_string(connection_string_b, **CLIENT_OPTIONS)


@pytest.fixture(scope="session")
def http(ca_bundle):
    """A ``requests`` session for Tessera's own routes (it trusts the server's CA through REQUESTS_CA_BUNDLE)."""
    with requests.Session() as session:
        yield session


class Me:
    """Calls ``GET /access/me`` with a user access token."""

    def __init__(self, session, endpoint):
        self._session = session
        self._endpoint = endpoint

    def __call__(self, token):
        """The raw answer to ``GET /access/me`` with ``Authorization: Bearer <token>``."""
        return self._session.get(
            self._endpoint + "/access/me",
            headers={"Authorization": f"Bearer {token}"},
            timeout=HTTP_TIMEOUT,
        )

    def accepts(self, token, user_id=None, scopes=None):
        """Asserts that Tessera accepts the token, and returns the body."""
        resp = self(token)
        assert resp.status_code == 200, f"/access/me refused a live token: {resp.status_code} {resp.text}"
        assert resp.headers.get("Content-Type", "").startswith("application/json"), resp.headers
        body = resp.json()
        assert isinstance(body.get("identity"), dict), body
        assert isinstance(body["identity"].get("id"), str), body
        assert isinstance(body.get("scopes"), list), body
        assert "expiresOn" in body, body
        if user_id is not None:
            assert body["identity"]["id"] == user_id, body
        if scopes is not None:
            assert sorted(body["scopes"]) == sorted(set(scopes)), body
        return body

    def refuses(self, token):
        """Asserts that Tessera refuses the token with a JSON 401, and returns the error."""
        resp = self(token)
        assert resp.status_code == 401, f"/access/me should refuse the token: {resp.status_code} {resp.text}"
        assert resp.headers.get("WWW-Authenticate", "").startswith("Bearer"), resp.headers
        return error_of(resp.headers, resp.text)


@pytest.fixture(scope="session")
def me(http, endpoint):
    """``GET /access/me``: ``me(token)`` is the raw answer; ``me.accepts(token)`` and ``me.refuses(token)`` assert."""
    return Me(http, endpoint)


# ---- helpers shared by the test modules ----


def error_of(headers, text):
    """Asserts a JSON error envelope ``{"error":{"code","message"}}`` and returns the ``error`` object."""
    content_type = headers.get("Content-Type", "")
    assert content_type.startswith("application/json"), f"error content type {content_type!r}: {text!r}"
    body = json.loads(text)
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), f"not an error envelope: {text!r}"
    error = body["error"]
    assert isinstance(error.get("code"), str) and error["code"], f"error without a code: {text!r}"
    assert isinstance(error.get("message"), str) and error["message"], f"error without a message: {text!r}"
    return error


def sdk_error(exc_info, status, exception_type):
    """Asserts that the SDK raised exactly ``exception_type`` for an HTTP ``status`` with a JSON error body, and
    returns the ``error`` object of the body."""
    ex = exc_info.value
    assert type(ex) is exception_type, f"expected {exception_type.__name__}, got {type(ex).__name__}: {ex}"
    assert ex.status_code == status, f"expected HTTP {status}, got {ex.status_code}: {ex}"
    assert ex.message, "the exception has an empty message"
    response = ex.response
    assert response is not None
    return error_of(response.headers, response.text())


def parse_expires_on(value):
    """``expiresOn`` (RFC 3339 UTC, milliseconds, ``Z``) as an aware datetime; asserts the format."""
    assert isinstance(value, str), f"expiresOn must reach the caller as the wire string, got {value!r}"
    m = EXPIRES_ON.match(value)
    assert m, f"expiresOn {value!r} is not RFC 3339 UTC with milliseconds and Z"
    y, mo, d, h, mi, s, ms = (int(g) for g in m.groups())
    return datetime(y, mo, d, h, mi, s, ms * 1000, tzinfo=timezone.utc)


def jwt_payload(token):
    """The payload of a user access token, decoded as base64url (the JWT standard)."""
    parts = token.split(".")
    assert len(parts) == 3, f"a JWT has three segments: {token!r}"
    segment = parts[1]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def check_token(token, expires_on, lifetime_minutes):
    """Asserts what the SDKs need of a user access token (docs/wire.md §3.1) and of its ``expiresOn``: the token
    parses with the SDK's own ``create_access_token``, ``exp`` is an integer and agrees with ``expiresOn``, and the
    lifetime is within 5% of ``lifetime_minutes`` (as the SDK's tests check). Returns the payload."""
    assert isinstance(token, str) and token, f"empty token: {token!r}"
    payload = jwt_payload(token)
    assert type(payload.get("exp")) is int, f"exp must be an integer: {payload!r}"
    # The SDKs' parser: standard base64, non-strict (it would mangle `-` and `_`), ASCII, JSON, `exp`.
    parsed = create_access_token(token)
    assert parsed.token == token
    assert parsed.expires_on == payload["exp"], (parsed, payload)
    expires = parse_expires_on(expires_on)
    assert abs(calendar.timegm(expires.utctimetuple()) - payload["exp"]) <= 1, (expires_on, payload["exp"])
    remaining = (expires - datetime.now(timezone.utc)).total_seconds()
    expected = lifetime_minutes * 60
    assert abs(remaining - expected) < expected * 0.05, (
        f"token lives {remaining:.0f}s, expected {expected}s (±5%): expiresOn {expires_on}"
    )
    return payload


def identity_parts(user_id):
    """``(account guid, user guid)`` of an ACS identity id; asserts its format."""
    m = IDENTITY_ID.match(user_id)
    assert m, f"identity id {user_id!r} is not 8:acs:<account guid>_<guid>"
    return m.group(1), m.group(2)


def unknown_user_id(known_user_id):
    """A well-formed id of an identity that was never created, in the same account as ``known_user_id``."""
    account, _ = identity_parts(known_user_id)
    return f"8:acs:{account}_{uuid.uuid4()}"


class Capture:
    """A ``raw_response_hook``: keeps the status, headers and body of every answer."""

    def __init__(self):
        self.responses = []

    def __call__(self, pipeline_response):
        response = pipeline_response.http_response
        self.responses.append(
            (response.status_code, requests.structures.CaseInsensitiveDict(response.headers), response.text())
        )

    @property
    def last(self):
        """``(status, headers, body text)`` of the last answer."""
        assert self.responses, "no answer was captured"
        return self.responses[-1]

    def json(self):
        """The last answer's body as JSON (asserting a JSON content type)."""
        _, headers, text = self.last
        content_type = headers.get("Content-Type", "")
        assert content_type.startswith("application/json"), f"content type {content_type!r}: {text!r}"
        return json.loads(text)
