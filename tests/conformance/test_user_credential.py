"""The SDK's ``CommunicationTokenCredential`` (docs/wire.md §3.2) with Tessera's tokens: a static token, on-demand and
proactive refresh through a refresher that asks Tessera for a new token with the SDK, and the refreshed token sent
by azure-core's bearer policy (as the Chat SDK sends it) to ``/access/me``."""

import base64
import json
import threading
import time
from datetime import timedelta

from azure.communication.identity._shared.user_credential import CommunicationTokenCredential
from azure.communication.identity._shared.utils import create_access_token
from azure.core import PipelineClient
from azure.core.pipeline.policies import BearerTokenCredentialPolicy, RetryPolicy
from azure.core.rest import HttpRequest
from conftest import check_token, jwt_payload


def b64url(data):
    """Unpadded base64url of JSON."""
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def local_token(expires_in_seconds):
    """A JWT-shaped token that only the SDK sees (never sent to Tessera): it expires in ``expires_in_seconds``, and
    its payload avoids ``-`` and ``_``, which the SDK's non-strict base64 decoding drops."""
    header = b64url({"alg": "none", "typ": "JWT"})
    exp = int(time.time()) + expires_in_seconds
    for pad in range(64):
        payload = b64url({"exp": exp, "pad": "x" * pad})
        if "-" not in payload and "_" not in payload:
            return f"{header}.{payload}.bm90LXNpZ25lZA"
    raise AssertionError("no clean payload")


class Refresher:
    """A ``token_refresher``: a new 60-minute ``chat`` token for ``user``, from Tessera through the SDK, wrapped with
    the SDK's ``create_access_token`` (``get_token`` gives ``expires_on`` as the wire string, the credential needs
    the integer)."""

    def __init__(self, client, user):
        self._client = client
        self._user = user
        self._lock = threading.Lock()
        self.tokens = []

    def __call__(self):
        token = self._client.get_token(self._user, ["chat"], token_expires_in=timedelta(minutes=60))
        check_token(token.token, token.expires_on, 60)
        with self._lock:
            self.tokens.append(token.token)
        return create_access_token(token.token)

    @property
    def calls(self):
        """How many times the credential called it."""
        with self._lock:
            return len(self.tokens)


def me_through_bearer_policy(endpoint, credential):
    """``GET /access/me`` sent by azure-core with ``BearerTokenCredentialPolicy(credential)`` (no scopes, as the Chat
    SDK builds it): the answer's status and JSON body."""
    policies = [RetryPolicy(retry_total=0), BearerTokenCredentialPolicy(credential)]
    with PipelineClient(endpoint, policies=policies, connection_timeout=10, read_timeout=60) as pipeline:
        response = pipeline.send_request(HttpRequest("GET", endpoint + "/access/me"))
        return response.status_code, response.json() if response.status_code == 200 else response.text()


def test_a_static_token(client, me, endpoint):
    user, token = client.create_user_and_token(["chat"])
    credential = CommunicationTokenCredential(token.token)
    access = credential.get_token()
    assert access.token == token.token
    assert access.expires_on == jwt_payload(token.token)["exp"]
    status, body = me_through_bearer_policy(endpoint, credential)
    assert status == 200, body
    assert body["identity"]["id"] == user.properties["id"]


def test_on_demand_refresh(client, me, endpoint):
    user = client.create_user()
    refresher = Refresher(client, user)
    # Less than the on-demand window (2 minutes) left: the first get_token refreshes.
    credential = CommunicationTokenCredential(local_token(60), token_refresher=refresher)
    access = credential.get_token()
    assert refresher.calls == 1
    assert access.token == refresher.tokens[0]
    assert access.expires_on == jwt_payload(access.token)["exp"]
    me.accepts(access.token, user.properties["id"], ["chat"])
    # An hour left: no refresh.
    assert credential.get_token().token == access.token
    assert refresher.calls == 1
    status, body = me_through_bearer_policy(endpoint, credential)
    assert status == 200, body
    assert body["identity"]["id"] == user.properties["id"]
    assert refresher.calls == 1


def test_a_live_token_is_not_refreshed(client, me):
    user, token = client.create_user_and_token(["chat"], token_expires_in=timedelta(minutes=60))
    refresher = Refresher(client, user)
    credential = CommunicationTokenCredential(token.token, token_refresher=refresher)
    assert credential.get_token().token == token.token
    with CommunicationTokenCredential(token.token, token_refresher=refresher, proactive_refresh=True) as proactive:
        # 60 minutes is outside the proactive window (10 minutes) too.
        assert proactive.get_token().token == token.token
    assert refresher.calls == 0


def test_proactive_refresh(client, me, endpoint):
    user = client.create_user()
    refresher = Refresher(client, user)
    # Inside the proactive window: the credential's timer refreshes after half the remaining lifetime (3 s), in the
    # background, without a get_token call.
    with CommunicationTokenCredential(local_token(6), token_refresher=refresher, proactive_refresh=True) as credential:
        deadline = time.monotonic() + 30
        while refresher.calls == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert refresher.calls == 1, "the proactive timer did not call the refresher"
        access = credential.get_token()
        assert access.token == refresher.tokens[0]
        me.accepts(access.token, user.properties["id"], ["chat"])
        status, body = me_through_bearer_policy(endpoint, credential)
        assert status == 200, body
        assert refresher.calls == 1


def test_a_refreshed_token_after_revocation(client, me):
    user, token = client.create_user_and_token(["chat"])
    client.revoke_tokens(user)
    me.refuses(token.token)
    refresher = Refresher(client, user)
    credential = CommunicationTokenCredential(local_token(30), token_refresher=refresher)
    me.accepts(credential.get_token().token, user.properties["id"], ["chat"])
