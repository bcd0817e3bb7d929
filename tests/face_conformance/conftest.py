"""Fixtures of the Face v1.0 conformance suite: the official Python SDK (azure-cognitiveservices-vision-face 0.6.1,
msrest-based, unmodified) against a running Tessera with its face engine loaded.

The Rust harness (crates/server/tests/api/face_conformance.rs) starts the server, creates the accounts, issues the
client one limited access token and then moves the server's clock two days on (so that token is expired), and sets:

* ``TESSERA_ENDPOINT``: ``https://127.0.0.1:PORT``;
* ``REQUESTS_CA_BUNDLE``: the server's generated CA (PEM), which ``requests``, and so msrest, trusts;
* ``TESSERA_ADMIN_KEY``: the operator's key (the suite cuts the ISV off through the admin API, last);
* ``TESSERA_ISV_KEY``, ``TESSERA_ISV_RESOURCE_ID``: a Face account approved for, and an ISV granting,
  ``Face.Identification`` and ``Face.Verification``;
* ``TESSERA_CLIENT_KEY``, ``TESSERA_CLIENT_RESOURCE_ID``: the ISV's customer, a Face account with no approval;
* ``TESSERA_OTHER_KEY``, ``TESSERA_OTHER_RESOURCE_ID``: another Face account with no approval;
* ``TESSERA_COMMUNICATION_KEY``: a Communication account's key (not a Face account);
* ``TESSERA_EXPIRED_TOKEN``: a limited access token the ISV issued for the client, now expired;
* ``TESSERA_FACE_IMAGES``: the directory of the photographs (see ``PHOTOS``).

Every SDK client is built with no retries (an error answer surfaces at once and a request is never sent twice) and
bounded connect and read timeouts, so that a hung server fails the suite instead of stalling it. Tests that change
the server for good are marked ``irreversible`` and run after all the others.
"""

import io
import os
import re

import pytest
import requests
from azure.cognitiveservices.vision.face import FaceClient
from azure.cognitiveservices.vision.face.models import APIErrorException
from msrest.authentication import CognitiveServicesCredentials

#: What every plain HTTP call of the suite waits at most, in seconds.
HTTP_TIMEOUT = 60

#: The SDK's connect and read timeouts, in seconds (detection of a large photograph on a debug build is slow).
SDK_TIMEOUT = (10, 300)

#: The flags the ISV holds and grants.
FACE_FLAGS = ["Face.Identification", "Face.Verification"]

#: A GUID, as Azure writes face, persisted face and person ids.
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)

#: The photographs in ``TESSERA_FACE_IMAGES``: one face each, except Solvay (29 faces).
PHOTOS = {
    "obama": "obama.jpg",
    "obama2": "obama2.jpg",
    "obama3": "obama3.jpg",
    "biden": "biden.jpg",
    "newton": "newton.png",
    "gauss": "gauss.png",
    "solvay": "solvay_conference_1927.jpg",
}

#: The confidence from which Azure's clients read "the same person".
SAME_PERSON = 0.5


def _env(name):
    value = os.environ.get(name, "").strip()
    if not value:
        pytest.fail(
            f"{name} is not set: this suite runs against a live Tessera and is started by "
            "`cargo test -p tessera-server --test face_conformance`, which sets it",
            pytrace=False,
        )
    return value


def pytest_configure(config):
    """Registers the ``irreversible`` marker."""
    config.addinivalue_line(
        "markers", "irreversible: changes the server for good (e.g. cuts the ISV off); runs after every other test"
    )


def pytest_collection_modifyitems(session, config, items):
    """Moves the tests marked ``irreversible`` to the end, keeping the order of the others (a stable sort)."""
    items.sort(key=lambda item: item.get_closest_marker("irreversible") is not None)


# ---- the environment ----


@pytest.fixture(scope="session")
def endpoint():
    """``https://127.0.0.1:PORT``, without a trailing slash."""
    return _env("TESSERA_ENDPOINT").rstrip("/")


@pytest.fixture(scope="session")
def ca_bundle():
    """The server's CA certificate file."""
    path = _env("REQUESTS_CA_BUNDLE")
    assert os.path.isfile(path), f"REQUESTS_CA_BUNDLE={path!r} is not a file"
    return path


@pytest.fixture(scope="session")
def admin_key():
    """The operator's key."""
    return _env("TESSERA_ADMIN_KEY")


@pytest.fixture(scope="session")
def isv_key():
    """The ISV's subscription key."""
    return _env("TESSERA_ISV_KEY")


@pytest.fixture(scope="session")
def isv_resource_id():
    """The ISV's resource id."""
    return _env("TESSERA_ISV_RESOURCE_ID")


@pytest.fixture(scope="session")
def client_resource_id():
    """The client's resource id."""
    return _env("TESSERA_CLIENT_RESOURCE_ID")


@pytest.fixture(scope="session")
def other_resource_id():
    """The other Face account's resource id."""
    return _env("TESSERA_OTHER_RESOURCE_ID")


@pytest.fixture(scope="session")
def expired_token():
    """A limited access token the ISV issued for the client before the server's clock moved two days on."""
    return _env("TESSERA_EXPIRED_TOKEN")


@pytest.fixture(scope="session")
def photos():
    """``photos[name]``: the path of a photograph (a key of ``PHOTOS``), checked to exist."""
    directory = _env("TESSERA_FACE_IMAGES")
    paths = {name: os.path.join(directory, file) for name, file in PHOTOS.items()}
    for path in paths.values():
        assert os.path.isfile(path), f"{path} is missing"
    return paths


# ---- clients ----


def face_client(endpoint, key):
    """A ``FaceClient`` of the account with ``key``: no retries, bounded waits. msrest sends with ``requests``,
    which trusts ``REQUESTS_CA_BUNDLE``."""
    client = FaceClient(endpoint, CognitiveServicesCredentials(key))
    client.config.retry_policy.retries = 0
    client.config.connection.timeout = SDK_TIMEOUT
    return client


@pytest.fixture(scope="session")
def client(endpoint, ca_bundle):
    """The client's ``FaceClient`` (its own key)."""
    return face_client(endpoint, _env("TESSERA_CLIENT_KEY"))


@pytest.fixture(scope="session")
def other(endpoint, ca_bundle):
    """The other Face account's ``FaceClient``."""
    return face_client(endpoint, _env("TESSERA_OTHER_KEY"))


@pytest.fixture(scope="session")
def communication(endpoint, ca_bundle):
    """A ``FaceClient`` holding the Communication account's key."""
    return face_client(endpoint, _env("TESSERA_COMMUNICATION_KEY"))


@pytest.fixture(scope="session")
def http(ca_bundle):
    """A ``requests`` session for Tessera's STS and admin API (it trusts the server's CA through
    REQUESTS_CA_BUNDLE)."""
    with requests.Session() as session:
        yield session


class Sts:
    """Issues limited access tokens as the ISV: ``POST /sts/v1.0/issueLimitedAccessToken`` with its key."""

    def __init__(self, session, endpoint, isv_key):
        self._session = session
        self._endpoint = endpoint
        self._isv_key = isv_key

    def request(self, resource_id, flags=None, expired_time=3600):
        """The raw answer to an issuance request for ``resource_id`` and ``flags`` (default: both Face flags)."""
        return self._session.post(
            f"{self._endpoint}/sts/v1.0/issueLimitedAccessToken",
            params={"expiredTime": str(expired_time)},
            headers={"Ocp-Apim-Subscription-Key": self._isv_key},
            json={"resourceId": resource_id, "featureFlags": list(flags or FACE_FLAGS)},
            timeout=HTTP_TIMEOUT,
        )

    def issue(self, resource_id, flags=None, expired_time=3600):
        """A fresh token for ``resource_id`` (asserting 200, ``application/jwt`` and the JWT's shape)."""
        resp = self.request(resource_id, flags, expired_time)
        assert resp.status_code == 200, f"issuance refused: {resp.status_code} {resp.text}"
        content_type = resp.headers.get("Content-Type", "")
        assert content_type.startswith("application/jwt"), f"content type {content_type!r}"
        token = resp.text.strip()
        assert token.count(".") == 2, f"not a JWT: {token!r}"
        return token


@pytest.fixture(scope="session")
def sts(http, endpoint, isv_key):
    """The ISV's token issuance (see ``Sts``)."""
    return Sts(http, endpoint, isv_key)


@pytest.fixture(scope="session")
def client_token(sts, client_resource_id):
    """A fresh token the ISV issued for the client, granting both Face flags."""
    return sts.issue(client_resource_id)


@pytest.fixture(scope="session")
def other_token(sts, other_resource_id):
    """A fresh token the ISV issued for the other Face account, granting both Face flags."""
    return sts.issue(other_resource_id)


# ---- helpers shared by the test modules ----


def lat(token):
    """The ``custom_headers`` that present a limited access token."""
    return {"LimitedAccessToken": "Bearer " + token}


def image(path):
    """A fresh stream of a photograph's bytes (the SDK reads it to its end)."""
    with open(path, "rb") as f:
        return io.BytesIO(f.read())


def api_error(exc_info, status, code):
    """Asserts that the SDK raised ``APIErrorException`` for an HTTP ``status`` with a JSON error body
    ``{"error":{"code","message"}}`` whose code is ``code``, and returns the SDK's ``Error`` model."""
    exc = exc_info.value
    assert type(exc) is APIErrorException, f"expected APIErrorException, got {type(exc).__name__}: {exc}"
    response = exc.response
    assert response is not None, "the exception carries no response"
    assert response.status_code == status, f"expected HTTP {status} {code}, got {response.status_code}: {response.text}"
    content_type = response.headers.get("Content-Type", "")
    assert content_type.startswith("application/json"), f"error content type {content_type!r}: {response.text!r}"
    error = exc.error.error if exc.error is not None else None
    assert error is not None, f"the SDK did not parse an APIError from {response.text!r}"
    assert error.code == code, f"expected code {code}, got {error.code}: {error.message}"
    assert error.message, f"empty message: {response.text!r}"
    assert str(exc) == f"({error.code}) {error.message}", str(exc)
    return error


def is_guid(value):
    """Whether ``value`` is a GUID string."""
    return isinstance(value, str) and GUID.match(value) is not None
