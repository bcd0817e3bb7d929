"""The SDK's async client (``azure.communication.identity.aio``, on aiohttp): it signs the identity path
percent-decoded (``8:acs:…``) and aiohttp sends it decoded too (docs/wire.md §2.3), so Tessera must route and verify
both forms."""

import asyncio
from datetime import timedelta

import pytest
from azure.communication.identity.aio import CommunicationIdentityClient
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from conftest import CLIENT_OPTIONS, Capture, check_token, identity_parts, sdk_error


def async_client(connection_string, ca_bundle):
    """An async identity client; aiohttp does not read REQUESTS_CA_BUNDLE, so the CA is passed explicitly."""
    return CommunicationIdentityClient.from_connection_string(
        connection_string, connection_verify=ca_bundle, **CLIENT_OPTIONS
    )


def test_async_lifecycle(connection_string, ca_bundle, me):
    async def scenario():
        async with async_client(connection_string, ca_bundle) as client:
            user = await client.create_user()
            identity_parts(user.properties["id"])
            capture = Capture()
            token = await client.get_token(user, ["chat", "voip"], raw_response_hook=capture)
            assert capture.last[0] == 200
            check_token(token.token, token.expires_on, 1440)
            me.accepts(token.token, user.properties["id"], ["chat", "voip"])

            other, other_token = await client.create_user_and_token(
                ["chat.join"], token_expires_in=timedelta(minutes=60)
            )
            check_token(other_token.token, other_token.expires_on, 60)
            me.accepts(other_token.token, other.properties["id"], ["chat.join"])

            await client.revoke_tokens(user)
            me.refuses(token.token)
            me.accepts((await client.get_token(user, ["chat"])).token, user.properties["id"], ["chat"])

            await client.delete_user(other)
            me.refuses(other_token.token)
            with pytest.raises(ResourceNotFoundError) as ex:
                await client.get_token(other, ["chat"])
            sdk_error(ex, 404, ResourceNotFoundError)

            with pytest.raises(HttpResponseError) as ex:
                await client.get_token(user, ["chat"], token_expires_in=timedelta(minutes=1441))
            sdk_error(ex, 400, HttpResponseError)

    asyncio.run(scenario())


def test_async_wrong_key(endpoint, ca_bundle):
    async def scenario():
        wrong = f"endpoint={endpoint}/;accesskey=" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="
        async with async_client(wrong, ca_bundle) as client:
            with pytest.raises(ClientAuthenticationError) as ex:
                await client.create_user()
            sdk_error(ex, 401, ClientAuthenticationError)

    asyncio.run(scenario())
