"""The official Chat SDK (azure-communication-chat 1.3.0, unmodified) against Tessera's chat service, with user
access tokens issued by the Identity SDK: the seed's Bob-and-Sue conversation through every thread operation, paging
past one page, and the refusals the token's scopes and participation call for (docs/wire.md §4)."""

import uuid

import pytest
from azure.communication.chat import (
    ChatClient,
    ChatMessageType,
    ChatParticipant,
    CommunicationTokenCredential,
    CommunicationUserIdentifier,
)
from azure.communication.identity import CommunicationUserIdentifier as IdentityUser
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from conftest import CLIENT_OPTIONS, sdk_error


class User:
    """An identity of account A with a token for ``scopes``, and its chat client."""

    def __init__(self, identity_client, endpoint, scopes):
        user, token = identity_client.create_user_and_token(scopes=scopes)
        self.id = user.properties["id"]
        self.identifier = CommunicationUserIdentifier(self.id)
        self.chat = ChatClient(endpoint, CommunicationTokenCredential(token.token), **CLIENT_OPTIONS)

    def thread(self, thread_id):
        return self.chat.get_chat_thread_client(thread_id)


@pytest.fixture()
def users(client, endpoint):
    """A factory of users of account A."""
    return lambda *scopes: User(client, endpoint, list(scopes) or ["chat"])


def test_the_seed_conversation(users):
    bob, sue = users("chat"), users("chat")
    created = bob.chat.create_chat_thread(
        "Lunch", thread_participants=[ChatParticipant(identifier=sue.identifier, display_name="Sue")]
    )
    assert not created.errors, created.errors
    thread = created.chat_thread
    assert thread.id.startswith("19:") and thread.id.endswith("@thread.v2"), thread.id
    assert thread.topic == "Lunch"
    assert thread.created_by.raw_id == bob.id

    bobs, sues = bob.thread(thread.id), sue.thread(thread.id)
    sent = bobs.send_message("Hi Sue", sender_display_name="Bob", chat_message_type=ChatMessageType.TEXT,
                             metadata={"tags": "lunch"})
    message = sues.get_message(sent.id)
    assert message.content.message == "Hi Sue"
    assert message.type == ChatMessageType.TEXT
    assert message.sender.raw_id == bob.id
    assert message.sender_display_name == "Bob"
    assert message.metadata == {"tags": "lunch"}
    assert message.sequence_id == "1"

    # Paging past one page, newest first, each message once.
    for n in range(5):
        sues.send_message(f"reply {n}")
    pages = bobs.list_messages(results_per_page=2).by_page()
    seen = [m.content.message for page in pages for m in page]
    assert seen == ["reply 4", "reply 3", "reply 2", "reply 1", "reply 0", "Hi Sue"], seen

    # Edits and deletions, the sender's own.
    bobs.update_message(sent.id, content="Hi Sue!")
    edited = sues.get_message(sent.id)
    assert edited.content.message == "Hi Sue!" and edited.edited_on is not None
    with pytest.raises(HttpResponseError) as refused:
        sues.update_message(sent.id, content="not mine")
    assert sdk_error(refused, 403, HttpResponseError)["code"] == "NotTheSender"
    bobs.delete_message(sent.id)
    assert sues.get_message(sent.id).deleted_on is not None

    # Participants, topic, receipts, typing.
    members = {p.identifier.raw_id: p.display_name for p in bobs.list_participants(results_per_page=1)}
    assert members == {bob.id: None, sue.id: "Sue"}, members
    bobs.update_topic("Dinner")
    assert sues.get_properties().topic == "Dinner"
    newest = next(iter(sues.list_messages(results_per_page=1)))
    assert newest.type == ChatMessageType.TOPIC_UPDATED
    sues.send_read_receipt(newest.id)
    receipts = list(bobs.list_read_receipts())
    assert [(r.sender.raw_id, r.chat_message_id) for r in receipts] == [(sue.id, newest.id)]
    sues.send_typing_notification(sender_display_name="Sue")

    threads = [t.topic for t in sue.chat.list_chat_threads(results_per_page=1)]
    assert threads == ["Dinner"], threads
    bob.chat.delete_chat_thread(thread.id)
    with pytest.raises(ResourceNotFoundError) as gone:
        sues.get_properties()
    assert sdk_error(gone, 404, ResourceNotFoundError)["code"] == "ThreadNotFound"


def test_creation_is_idempotent_and_strangers_come_back_as_errors(users, client_b, endpoint):
    bob = users("chat")
    outsider = User(client_b, endpoint, ["chat"])
    token = str(uuid.uuid4())
    first = bob.chat.create_chat_thread(
        "Once", idempotency_token=token,
        thread_participants=[ChatParticipant(identifier=outsider.identifier, display_name="Out")],
    )
    assert [(p.identifier.raw_id, e.target) for p, e in first.errors] == [(outsider.id, outsider.id)]
    again = bob.chat.create_chat_thread("Once", idempotency_token=token)
    assert again.chat_thread.id == first.chat_thread.id
    # The outsider's account does not see the thread at all.
    with pytest.raises(ResourceNotFoundError) as hidden:
        outsider.thread(first.chat_thread.id).get_properties()
    assert sdk_error(hidden, 404, ResourceNotFoundError)["code"] == "ThreadNotFound"


def test_limited_and_non_participant_tokens_are_refused(users):
    bob, sue, eve = users("chat"), users("chat"), users("chat")
    kid = users("chat.join.limited")
    joiner = users("chat.join")
    thread_id = bob.chat.create_chat_thread(
        "Family",
        thread_participants=[ChatParticipant(identifier=u.identifier) for u in (sue, kid, joiner)],
    ).chat_thread.id

    # chat.join.limited sends, but adds and removes nobody.
    kid.thread(thread_id).send_message("hello")
    with pytest.raises(HttpResponseError) as refused:
        kid.thread(thread_id).add_participants([ChatParticipant(identifier=eve.identifier)])
    assert sdk_error(refused, 403, HttpResponseError)["code"] == "MissingScope"
    with pytest.raises(HttpResponseError) as refused:
        kid.thread(thread_id).remove_participant(sue.identifier)
    assert sdk_error(refused, 403, HttpResponseError)["code"] == "MissingScope"
    # chat.join works in existing threads, and creates none.
    joiner.thread(thread_id).add_participants([ChatParticipant(identifier=eve.identifier)])
    with pytest.raises(HttpResponseError) as refused:
        joiner.chat.create_chat_thread("Mine")
    assert sdk_error(refused, 403, HttpResponseError)["code"] == "MissingScope"
    bob.thread(thread_id).remove_participant(eve.identifier)

    # Only participants read or write.
    with pytest.raises(HttpResponseError) as refused:
        next(iter(eve.thread(thread_id).list_messages()))
    assert sdk_error(refused, 403, HttpResponseError)["code"] == "NotAParticipant"
    with pytest.raises(HttpResponseError) as refused:
        eve.thread(thread_id).send_message("let me in")
    assert sdk_error(refused, 403, HttpResponseError)["code"] == "NotAParticipant"


def test_a_revoked_identity_is_refused_at_once(users, client):
    bob = users("chat")
    thread_id = bob.chat.create_chat_thread("Soon gone").chat_thread.id
    bob.thread(thread_id).send_message("still here")
    client.revoke_tokens(IdentityUser(bob.id))
    with pytest.raises(ClientAuthenticationError) as refused:
        bob.thread(thread_id).send_message("too late")
    assert sdk_error(refused, 401, ClientAuthenticationError)["code"] == "TokenRevoked"
