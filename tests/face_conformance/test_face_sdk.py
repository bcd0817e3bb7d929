"""The Face v1.0 wire (docs/wire.md §5.1) as the official msrest-based Python SDK, unmodified, drives it against
Tessera: large person groups, persons, enrolment and training; detection, identification, verification and
find-similar on real photographs; the Limited Access gate (the client's own approval or a limited access token
presented with ``custom_headers``), with the refusal codes of ``tessera_core::policy::DenyReason`` and
``tessera_token::TokenError``; Azure's error codes; and isolation between accounts. The ISV is cut off by the last
test (marked ``irreversible``)."""

import io
import time
import uuid
from types import SimpleNamespace

import pytest
from azure.cognitiveservices.vision.face.models import APIErrorException, TrainingStatusType
from conftest import HTTP_TIMEOUT, SAME_PERSON, api_error, image, is_guid, lat

#: How long training may stay queued or running before the suite gives up, in seconds.
TRAINING_DEADLINE = 120

#: Who is enrolled in the client's gallery, from which photographs (obama3 is kept for probing).
ENROLMENT = [
    ("Obama", "obama"),
    ("Obama", "obama2"),
    ("Biden", "biden"),
    ("Gauss", "gauss"),
    ("Newton", "newton"),
]

#: The photographs detected once with the client's token, for the probes.
PROBES = ["obama3", "obama", "biden"]


def group_id(prefix):
    """A fresh large person group id (the SDK checks ``^[a-z0-9-_]+$``, at most 64 characters)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def wait_for_training(client, gid, headers=None):
    """Polls ``get_training_status`` while the training is queued or running, and returns the final status."""
    deadline = time.monotonic() + TRAINING_DEADLINE
    while True:
        status = client.large_person_group.get_training_status(gid, custom_headers=headers)
        if status.status not in (TrainingStatusType.nonstarted, TrainingStatusType.running):
            return status
        assert time.monotonic() < deadline, f"training of {gid} still {status.status} after {TRAINING_DEADLINE}s"
        time.sleep(0.2)


def train(client, gid, headers=None):
    """Trains a group (asserting the strict 202) and waits for the training to end; returns its status."""
    raw = client.large_person_group.train(gid, custom_headers=headers, raw=True)
    assert raw.response.status_code == 202, raw.response.text
    return wait_for_training(client, gid, headers)


def refused(exc_info, code):
    """Asserts a Limited Access refusal: 403 with ``code``."""
    return api_error(exc_info, 403, code)


def single_face(detected, photo):
    """The one face of a detection result (asserting there is exactly one, with a face id and a rectangle)."""
    assert isinstance(detected, list), detected
    assert len(detected) == 1, f"{photo}: expected one face, got {[f.as_dict() for f in detected]}"
    face = detected[0]
    assert is_guid(face.face_id), f"{photo}: face id {face.face_id!r}"
    rect = face.face_rectangle
    assert rect is not None and rect.width > 0 and rect.height > 0, f"{photo}: {face.as_dict()}"
    assert rect.left >= 0 and rect.top >= 0, f"{photo}: {face.as_dict()}"
    return face


# ---- fixtures ----


@pytest.fixture(scope="module")
def gallery(client, client_token, photos):
    """The seed scenario's group, built by the client with its own key and the ISV's token on every call: persons
    Obama, Biden, Gauss and Newton, enrolled from obama.jpg and obama2.jpg, biden.jpg, gauss.png and newton.png,
    then trained."""
    headers = lat(client_token)
    gid = group_id("gallery")
    assert (
        client.large_person_group.create(gid, name="Conformance gallery", user_data="seed", custom_headers=headers)
        is None
    )
    persons = {}
    for name in ("Obama", "Biden", "Gauss", "Newton"):
        person = client.large_person_group_person.create(
            gid, name=name, user_data=f"{name.lower()}-data", custom_headers=headers
        )
        assert is_guid(person.person_id), person.as_dict()
        persons[name] = person.person_id
    assert len(set(persons.values())) == 4, persons
    persisted = {}
    for name, photo in ENROLMENT:
        added = client.large_person_group_person.add_face_from_stream(
            gid, persons[name], image(photos[photo]), user_data=photo, custom_headers=headers
        )
        assert is_guid(added.persisted_face_id), added.as_dict()
        persisted[photo] = added.persisted_face_id
    status = train(client, gid, headers)
    return SimpleNamespace(group_id=gid, persons=persons, persisted=persisted, training=status)


@pytest.fixture(scope="module")
def faces(client, client_token, photos):
    """Face ids of obama3.jpg, obama.jpg and biden.jpg, detected by the client with its token."""
    found = {}
    for photo in PROBES:
        detected = client.face.detect_with_stream(image(photos[photo]), custom_headers=lat(client_token))
        found[photo] = single_face(detected, photo).face_id
    assert len(set(found.values())) == len(found), f"every detection gets its own face id: {found}"
    return found


@pytest.fixture(scope="module")
def untrained(client):
    """A client group with one person and no training, made without any token."""
    gid = group_id("untrained")
    client.large_person_group.create(gid, name="Never trained")
    person = client.large_person_group_person.create(gid, name="Nobody")
    return SimpleNamespace(group_id=gid, person_id=person.person_id)


@pytest.fixture(scope="module")
def other_gallery(other, other_token, gallery, photos):
    """The other account's own group, under the same id as the client's gallery (ids are per account): Gauss,
    enrolled from gauss.png and trained; and the face id of gauss.png detected by the other account with its own
    token."""
    headers = lat(other_token)
    gid = gallery.group_id
    other.large_person_group.create(gid, name="Other's gallery", custom_headers=headers)
    gauss = other.large_person_group_person.create(gid, name="Gauss", custom_headers=headers)
    other.large_person_group_person.add_face_from_stream(
        gid, gauss.person_id, image(photos["gauss"]), custom_headers=headers
    )
    status = train(other, gid, headers)
    assert status.status == TrainingStatusType.succeeded, status.as_dict()
    detected = other.face.detect_with_stream(image(photos["gauss"]), custom_headers=headers)
    face_id = single_face(detected, "gauss").face_id
    return SimpleNamespace(group_id=gid, gauss=gauss.person_id, face_id=face_id)


# ---- management needs no token ----


def test_groups_and_persons_are_managed_without_any_token(client):
    """Large person group and person management (create, get, list, update, training status, delete) needs no
    approval and no token: the client, approved for nothing, gets the SDK's strict 200s and Azure's 404s after
    deletion."""
    gid = group_id("managed")
    assert client.large_person_group.create(gid, name="Managed", user_data="ud") is None
    group = client.large_person_group.get(gid)
    assert (group.large_person_group_id, group.name, group.user_data) == (gid, "Managed", "ud")
    assert client.large_person_group.update(gid, name="Renamed") is None
    group = client.large_person_group.get(gid)
    assert (group.name, group.user_data) == ("Renamed", "ud")
    assert gid in [g.large_person_group_id for g in client.large_person_group.list()]
    assert client.large_person_group.get_training_status(gid).status == TrainingStatusType.nonstarted

    alice = client.large_person_group_person.create(gid, name="Alice", user_data="x")
    assert is_guid(alice.person_id), alice.as_dict()
    person = client.large_person_group_person.get(gid, alice.person_id)
    assert (person.person_id, person.name, person.user_data, person.persisted_face_ids) == (
        alice.person_id,
        "Alice",
        "x",
        [],
    )
    assert client.large_person_group_person.update(gid, alice.person_id, user_data="y") is None
    listed = client.large_person_group_person.list(gid)
    assert [(p.person_id, p.name, p.user_data) for p in listed] == [(alice.person_id, "Alice", "y")]

    assert client.large_person_group_person.delete(gid, alice.person_id) is None
    with pytest.raises(APIErrorException) as e:
        client.large_person_group_person.get(gid, alice.person_id)
    api_error(e, 404, "PersonNotFound")
    assert client.large_person_group.delete(gid) is None
    with pytest.raises(APIErrorException) as e:
        client.large_person_group.get(gid)
    api_error(e, 404, "LargePersonGroupNotFound")


def test_enrolment_and_training_need_no_token(client, photos):
    """Adding a face to a person (chunked octet-stream upload), removing it, and training need no token either:
    the persisted face id appears in the person and goes away with the face."""
    gid = group_id("enrol")
    client.large_person_group.create(gid, name="Enrolment")
    person = client.large_person_group_person.create(gid, name="Barack")
    added = client.large_person_group_person.add_face_from_stream(gid, person.person_id, image(photos["obama"]))
    assert is_guid(added.persisted_face_id), added.as_dict()
    assert client.large_person_group_person.get(gid, person.person_id).persisted_face_ids == [added.persisted_face_id]
    assert train(client, gid).status == TrainingStatusType.succeeded
    assert client.large_person_group_person.delete_face(gid, person.person_id, added.persisted_face_id) is None
    assert client.large_person_group_person.get(gid, person.person_id).persisted_face_ids == []
    client.large_person_group.delete(gid)


def test_unknown_groups_and_persons_are_404(client, untrained, photos):
    """A group the account does not have is 404 LargePersonGroupNotFound on every route; a person the group does
    not have is 404 PersonNotFound."""
    missing = group_id("missing")
    for call in (
        lambda: client.large_person_group.get(missing),
        lambda: client.large_person_group.update(missing, name="x"),
        lambda: client.large_person_group.delete(missing),
        lambda: client.large_person_group.train(missing),
        lambda: client.large_person_group.get_training_status(missing),
        lambda: client.large_person_group_person.create(missing, name="x"),
        lambda: client.large_person_group_person.list(missing),
    ):
        with pytest.raises(APIErrorException) as e:
            call()
        api_error(e, 404, "LargePersonGroupNotFound")
    nobody = str(uuid.uuid4())
    for call in (
        lambda: client.large_person_group_person.get(untrained.group_id, nobody),
        lambda: client.large_person_group_person.update(untrained.group_id, nobody, name="x"),
        lambda: client.large_person_group_person.delete(untrained.group_id, nobody),
        lambda: client.large_person_group_person.add_face_from_stream(
            untrained.group_id, nobody, image(photos["obama"])
        ),
    ):
        with pytest.raises(APIErrorException) as e:
            call()
        api_error(e, 404, "PersonNotFound")


def test_a_body_that_is_not_an_image_is_invalid(client, untrained):
    """Bytes that are no image are 400 InvalidImage, in detection and in enrolment."""
    with pytest.raises(APIErrorException) as e:
        client.face.detect_with_stream(image_bytes(b"this is not an image, it is a sentence"), return_face_id=False)
    api_error(e, 400, "InvalidImage")
    with pytest.raises(APIErrorException) as e:
        client.large_person_group_person.add_face_from_stream(
            untrained.group_id, untrained.person_id, image_bytes(b"\x89PNG\r\n\x1a\nnot really")
        )
    api_error(e, 400, "InvalidImage")
    assert client.large_person_group_person.get(untrained.group_id, untrained.person_id).persisted_face_ids == []


def image_bytes(data):
    """A stream of ``data``."""
    return io.BytesIO(data)


def test_a_communication_key_is_not_a_face_key(communication):
    """A Communication account's key on the Face API is 403 NotAFaceAccount."""
    with pytest.raises(APIErrorException) as e:
        communication.large_person_group.list()
    api_error(e, 403, "NotAFaceAccount")
    with pytest.raises(APIErrorException) as e:
        communication.large_person_group.create(group_id("acs"), name="nope")
    api_error(e, 403, "NotAFaceAccount")


# ---- the seed scenario: the client with the ISV's token ----


def test_the_gallery_is_enrolled_and_trained(client, client_token, gallery):
    """The seed group holds the four persons with their persisted faces (two for Obama), and its training
    succeeded."""
    assert gallery.training.status == TrainingStatusType.succeeded, gallery.training.as_dict()
    assert gallery.training.created is not None, gallery.training.as_dict()
    listed = client.large_person_group_person.list(gallery.group_id, custom_headers=lat(client_token))
    by_id = {p.person_id: p for p in listed}
    assert set(by_id) == set(gallery.persons.values())
    expected = {
        "Obama": {gallery.persisted["obama"], gallery.persisted["obama2"]},
        "Biden": {gallery.persisted["biden"]},
        "Gauss": {gallery.persisted["gauss"]},
        "Newton": {gallery.persisted["newton"]},
    }
    for name, person_id in gallery.persons.items():
        person = by_id[person_id]
        assert person.name == name
        assert person.user_data == f"{name.lower()}-data"
        assert set(person.persisted_face_ids) == expected[name], person.as_dict()
    status = client.large_person_group.get_training_status(gallery.group_id, custom_headers=lat(client_token))
    assert status.status == TrainingStatusType.succeeded


def test_detection_with_the_token_returns_face_ids(client, client_token, photos):
    """With the ISV's token, the SDK's default detection (returnFaceId=true) answers one face with a face id for
    obama3.jpg, and a fresh face id on every call."""
    first = single_face(
        client.face.detect_with_stream(image(photos["obama3"]), custom_headers=lat(client_token)), "obama3"
    )
    second = single_face(
        client.face.detect_with_stream(image(photos["obama3"]), custom_headers=lat(client_token)), "obama3"
    )
    assert first.face_id != second.face_id
    assert first.face_rectangle.as_dict() == second.face_rectangle.as_dict(), "detection is deterministic"


def test_identify_finds_obama(client, client_token, gallery, faces):
    """obama3.jpg (not enrolled) is identified as Obama, with confidence at least 0.5."""
    results = client.face.identify(
        [faces["obama3"]], large_person_group_id=gallery.group_id, custom_headers=lat(client_token)
    )
    assert len(results) == 1, [r.as_dict() for r in results]
    assert results[0].face_id == faces["obama3"]
    candidates = results[0].candidates
    assert len(candidates) == 1, results[0].as_dict()
    assert candidates[0].person_id == gallery.persons["Obama"], results[0].as_dict()
    assert SAME_PERSON <= candidates[0].confidence <= 1.0, results[0].as_dict()


def test_identify_finds_biden(client, client_token, gallery, faces):
    """biden.jpg is identified as Biden."""
    results = client.face.identify(
        [faces["biden"]], large_person_group_id=gallery.group_id, custom_headers=lat(client_token)
    )
    assert len(results) == 1, [r.as_dict() for r in results]
    assert results[0].face_id == faces["biden"]
    candidates = results[0].candidates
    assert candidates and candidates[0].person_id == gallery.persons["Biden"], results[0].as_dict()
    assert SAME_PERSON <= candidates[0].confidence <= 1.0, results[0].as_dict()


def test_identify_answers_every_face_of_a_request(client, client_token, gallery, faces):
    """Two faces in one request get one result each, and asking for up to four candidates still names only the
    right person with confidence at least 0.5, best first."""
    results = client.face.identify(
        [faces["obama3"], faces["biden"]],
        large_person_group_id=gallery.group_id,
        max_num_of_candidates_returned=4,
        custom_headers=lat(client_token),
    )
    by_face = {r.face_id: r.candidates for r in results}
    assert len(results) == 2 and set(by_face) == {faces["obama3"], faces["biden"]}, [r.as_dict() for r in results]
    for face, name in (("obama3", "Obama"), ("biden", "Biden")):
        candidates = by_face[faces[face]]
        assert 1 <= len(candidates) <= 4, candidates
        confidences = [c.confidence for c in candidates]
        assert confidences == sorted(confidences, reverse=True), "best candidate first"
        assert [c.person_id for c in candidates if c.confidence >= SAME_PERSON] == [gallery.persons[name]], [
            c.as_dict() for c in candidates
        ]


def test_verify_face_to_face(client, client_token, faces):
    """Face-to-face verification: obama3 and obama are the same person, obama3 and biden are not."""
    same = client.face.verify_face_to_face(faces["obama3"], faces["obama"], custom_headers=lat(client_token))
    assert same.is_identical is True, same.as_dict()
    assert SAME_PERSON <= same.confidence <= 1.0, same.as_dict()
    different = client.face.verify_face_to_face(faces["obama3"], faces["biden"], custom_headers=lat(client_token))
    assert different.is_identical is False, different.as_dict()
    assert 0.0 <= different.confidence < SAME_PERSON, different.as_dict()


def test_verify_face_to_person(client, client_token, gallery, faces):
    """Face-to-person verification against the trained group: obama3 is the person Obama; biden is not."""
    same = client.face.verify_face_to_person(
        faces["obama3"],
        gallery.persons["Obama"],
        large_person_group_id=gallery.group_id,
        custom_headers=lat(client_token),
    )
    assert same.is_identical is True, same.as_dict()
    assert SAME_PERSON <= same.confidence <= 1.0, same.as_dict()
    different = client.face.verify_face_to_person(
        faces["biden"],
        gallery.persons["Obama"],
        large_person_group_id=gallery.group_id,
        custom_headers=lat(client_token),
    )
    assert different.is_identical is False, different.as_dict()
    assert 0.0 <= different.confidence < SAME_PERSON, different.as_dict()


def test_find_similar_among_face_ids(client, client_token, faces):
    """find_similar over given face ids puts obama.jpg's face first for obama3, and never biden's with confidence
    at least 0.5."""
    similar = client.face.find_similar(
        faces["obama3"], face_ids=[faces["biden"], faces["obama"]], custom_headers=lat(client_token)
    )
    assert similar, "obama.jpg's face is similar to obama3's"
    assert similar[0].face_id == faces["obama"], [s.as_dict() for s in similar]
    assert SAME_PERSON <= similar[0].confidence <= 1.0, similar[0].as_dict()
    confidences = [s.confidence for s in similar]
    assert confidences == sorted(confidences, reverse=True), "most similar first"
    assert faces["biden"] not in [s.face_id for s in similar if s.confidence >= SAME_PERSON]
    assert faces["obama3"] not in [s.face_id for s in similar], "the query face is not among the candidates given"


def test_faces_nobody_enrolled_are_not_identified(client, client_token, gallery, photos):
    """Faces of the 1927 Solvay conference photograph (none of them enrolled) get no candidate with confidence at
    least 0.5, and never Obama or Biden."""
    detected = client.face.detect_with_stream(image(photos["solvay"]), custom_headers=lat(client_token))
    assert len(detected) >= 10, f"the Solvay photograph shows 29 faces, {len(detected)} detected"
    ids = [f.face_id for f in detected[:10]]
    assert all(is_guid(i) for i in ids) and len(set(ids)) == 10, ids
    results = client.face.identify(
        ids, large_person_group_id=gallery.group_id, max_num_of_candidates_returned=4, custom_headers=lat(client_token)
    )
    assert sorted(r.face_id for r in results) == sorted(ids)
    famous = {gallery.persons["Obama"], gallery.persons["Biden"]}
    for result in results:
        assert all(c.confidence < SAME_PERSON for c in result.candidates), result.as_dict()
        assert not famous & {c.person_id for c in result.candidates}, result.as_dict()


# ---- the gate ----


def test_detection_with_face_ids_needs_approval_or_a_token(client, photos):
    """Without a token the client (approved for nothing) is refused the SDK's default detection, which asks for
    face ids: 403 NotApproved."""
    with pytest.raises(APIErrorException) as e:
        client.face.detect_with_stream(image(photos["obama3"]))
    refused(e, "NotApproved")


def test_detection_without_face_ids_needs_nothing(client, photos):
    """Detection with return_face_id=False needs no approval: 200, one face rectangle, no face id."""
    detected = client.face.detect_with_stream(image(photos["obama3"]), return_face_id=False)
    assert len(detected) == 1, [f.as_dict() for f in detected]
    face = detected[0]
    assert face.face_id is None, face.as_dict()
    rect = face.face_rectangle
    assert rect.width > 0 and rect.height > 0 and rect.left >= 0 and rect.top >= 0, face.as_dict()


def test_identification_and_verification_need_approval_or_a_token(client, gallery, faces):
    """Without a token, identify, find_similar and both verifications are 403 NotApproved, even with face ids the
    client detected legitimately."""
    for call in (
        lambda: client.face.identify([faces["obama3"]], large_person_group_id=gallery.group_id),
        lambda: client.face.find_similar(faces["obama3"], face_ids=[faces["obama"]]),
        lambda: client.face.verify_face_to_face(faces["obama3"], faces["obama"]),
        lambda: client.face.verify_face_to_person(
            faces["obama3"], gallery.persons["Obama"], large_person_group_id=gallery.group_id
        ),
    ):
        with pytest.raises(APIErrorException) as e:
            call()
        refused(e, "NotApproved")


def test_a_token_for_another_account_is_refused(client, other_token, gallery, faces, photos):
    """A valid token the ISV issued for the other account, presented with the client's key, is 403
    TokenForOtherAccount on every gated call."""
    headers = lat(other_token)
    for call in (
        lambda: client.face.detect_with_stream(image(photos["obama3"]), custom_headers=headers),
        lambda: client.face.identify([faces["obama3"]], large_person_group_id=gallery.group_id, custom_headers=headers),
        lambda: client.face.verify_face_to_face(faces["obama3"], faces["obama"], custom_headers=headers),
        lambda: client.face.find_similar(faces["obama3"], face_ids=[faces["obama"]], custom_headers=headers),
    ):
        with pytest.raises(APIErrorException) as e:
            call()
        refused(e, "TokenForOtherAccount")


def test_an_expired_token_is_refused(client, expired_token, gallery, faces, photos):
    """The client's token issued before the server's clock moved two days on is 403 TokenExpired."""
    headers = lat(expired_token)
    for call in (
        lambda: client.face.detect_with_stream(image(photos["obama3"]), custom_headers=headers),
        lambda: client.face.identify([faces["obama3"]], large_person_group_id=gallery.group_id, custom_headers=headers),
        lambda: client.face.verify_face_to_person(
            faces["obama3"], gallery.persons["Obama"], large_person_group_id=gallery.group_id, custom_headers=headers
        ),
    ):
        with pytest.raises(APIErrorException) as e:
            call()
        refused(e, "TokenExpired")


def test_a_token_grants_only_its_flags(client, sts, client_resource_id, gallery, faces, photos):
    """A token granting only Face.Verification allows verification and detection with face ids (either flag
    suffices) but not identification (403 FlagNotInToken); one granting only Face.Identification is the
    converse."""
    verification = lat(sts.issue(client_resource_id, ["Face.Verification"]))
    single_face(client.face.detect_with_stream(image(photos["obama3"]), custom_headers=verification), "obama3")
    assert client.face.verify_face_to_face(faces["obama3"], faces["obama"], custom_headers=verification).is_identical
    with pytest.raises(APIErrorException) as e:
        client.face.identify([faces["obama3"]], large_person_group_id=gallery.group_id, custom_headers=verification)
    refused(e, "FlagNotInToken")

    identification = lat(sts.issue(client_resource_id, ["Face.Identification"]))
    results = client.face.identify(
        [faces["obama3"]], large_person_group_id=gallery.group_id, custom_headers=identification
    )
    assert results[0].candidates[0].person_id == gallery.persons["Obama"]
    with pytest.raises(APIErrorException) as e:
        client.face.verify_face_to_face(faces["obama3"], faces["obama"], custom_headers=identification)
    refused(e, "FlagNotInToken")


def test_find_similar_in_a_large_face_list_needs_high_risk(client, sts, client_resource_id, client_token, photos, faces):
    """A large face list is managed without a token; find_similar against it needs a token that also grants
    LimitedAccess.HighRisk (403 FlagNotInToken without it), and answers persisted face ids."""
    lid = group_id("list")
    assert client.large_face_list.create(lid, name="Crowd") is None
    obama = client.large_face_list.add_face_from_stream(lid, image(photos["obama"]))
    client.large_face_list.add_face_from_stream(lid, image(photos["biden"]))
    raw = client.large_face_list.train(lid, raw=True)
    assert raw.response.status_code == 202, raw.response.text
    assert client.large_face_list.get_training_status(lid).status == TrainingStatusType.succeeded
    with pytest.raises(APIErrorException) as e:
        client.face.find_similar(faces["obama3"], large_face_list_id=lid, custom_headers=lat(client_token))
    refused(e, "FlagNotInToken")
    token = sts.issue(client_resource_id, flags=["Face.Identification", "LimitedAccess.HighRisk"])
    similar = client.face.find_similar(faces["obama3"], large_face_list_id=lid, custom_headers=lat(token))
    assert [s.persisted_face_id for s in similar] == [obama.persisted_face_id], [s.as_dict() for s in similar]
    assert SAME_PERSON <= similar[0].confidence <= 1.0, similar[0].as_dict()
    assert client.large_face_list.delete(lid) is None


# ---- face ids and groups in request bodies ----


def test_identification_before_training_is_refused(client, client_token, untrained, faces):
    """Identifying against a group that was never trained is 400 LargePersonGroupNotTrained."""
    with pytest.raises(APIErrorException) as e:
        client.face.identify(
            [faces["obama3"]], large_person_group_id=untrained.group_id, custom_headers=lat(client_token)
        )
    api_error(e, 400, "LargePersonGroupNotTrained")


def test_unknown_face_ids_and_groups_in_bodies(client, client_token, gallery, faces):
    """A face id that was never detected is 400 FaceNotFound (identify, both verifications, find_similar); a group
    the account does not have is 404 LargePersonGroupNotFound."""
    headers = lat(client_token)
    unknown = str(uuid.uuid4())
    for call in (
        lambda: client.face.identify([unknown], large_person_group_id=gallery.group_id, custom_headers=headers),
        lambda: client.face.verify_face_to_face(unknown, faces["obama"], custom_headers=headers),
        lambda: client.face.verify_face_to_face(faces["obama3"], unknown, custom_headers=headers),
        lambda: client.face.verify_face_to_person(
            unknown, gallery.persons["Obama"], large_person_group_id=gallery.group_id, custom_headers=headers
        ),
        lambda: client.face.find_similar(unknown, face_ids=[faces["obama"]], custom_headers=headers),
    ):
        with pytest.raises(APIErrorException) as e:
            call()
        api_error(e, 400, "FaceNotFound")
    missing = group_id("missing")
    with pytest.raises(APIErrorException) as e:
        client.face.identify([faces["obama3"]], large_person_group_id=missing, custom_headers=headers)
    api_error(e, 404, "LargePersonGroupNotFound")


# ---- isolation ----


def test_the_other_account_cannot_see_the_clients_groups(other, client, untrained, photos):
    """The other account gets 404 LargePersonGroupNotFound for every route on a group of the client's, does not
    list it, and changes nothing in it."""
    gid = untrained.group_id
    nobody = untrained.person_id
    assert gid not in [g.large_person_group_id for g in other.large_person_group.list()]
    for call in (
        lambda: other.large_person_group.get(gid),
        lambda: other.large_person_group.update(gid, name="mine now"),
        lambda: other.large_person_group.train(gid),
        lambda: other.large_person_group.get_training_status(gid),
        lambda: other.large_person_group_person.list(gid),
        lambda: other.large_person_group_person.get(gid, nobody),
        lambda: other.large_person_group_person.update(gid, nobody, name="Intruded"),
        lambda: other.large_person_group_person.create(gid, name="Intruder"),
        lambda: other.large_person_group_person.add_face_from_stream(gid, nobody, image(photos["biden"])),
        lambda: other.large_person_group_person.delete(gid, nobody),
        lambda: other.large_person_group.delete(gid),
    ):
        with pytest.raises(APIErrorException) as e:
            call()
        api_error(e, 404, "LargePersonGroupNotFound")
    assert client.large_person_group.get(gid).name == "Never trained"
    persons = client.large_person_group_person.list(gid)
    assert [(p.person_id, p.name, p.persisted_face_ids) for p in persons] == [(nobody, "Nobody", [])]
    assert client.large_person_group.get_training_status(gid).status == TrainingStatusType.nonstarted


def test_the_other_account_cannot_use_the_clients_face_ids(
    other, other_token, client, untrained, gallery, faces, other_gallery
):
    """With its own valid token, the other account identifies its own faces in its own group (which has the same
    id as the client's), but the client's face ids are 400 FaceNotFound to it, the client's persons are 404
    PersonNotFound, and a group only the client has is 404 LargePersonGroupNotFound. The client's group is
    untouched."""
    headers = lat(other_token)
    own = other.face.identify(
        [other_gallery.face_id], large_person_group_id=other_gallery.group_id, custom_headers=headers
    )
    assert own[0].candidates and own[0].candidates[0].person_id == other_gallery.gauss, own[0].as_dict()

    for call in (
        lambda: other.face.identify(
            [faces["obama3"]], large_person_group_id=other_gallery.group_id, custom_headers=headers
        ),
        lambda: other.face.verify_face_to_face(faces["obama3"], faces["obama"], custom_headers=headers),
        lambda: other.face.verify_face_to_face(other_gallery.face_id, faces["obama3"], custom_headers=headers),
        lambda: other.face.verify_face_to_person(
            faces["obama3"], other_gallery.gauss, large_person_group_id=other_gallery.group_id, custom_headers=headers
        ),
        lambda: other.face.find_similar(other_gallery.face_id, face_ids=[faces["obama"]], custom_headers=headers),
    ):
        with pytest.raises(APIErrorException) as e:
            call()
        api_error(e, 400, "FaceNotFound")

    with pytest.raises(APIErrorException) as e:
        other.face.verify_face_to_person(
            other_gallery.face_id,
            gallery.persons["Obama"],
            large_person_group_id=other_gallery.group_id,
            custom_headers=headers,
        )
    api_error(e, 404, "PersonNotFound")
    with pytest.raises(APIErrorException) as e:
        other.face.identify([other_gallery.face_id], large_person_group_id=untrained.group_id, custom_headers=headers)
    api_error(e, 404, "LargePersonGroupNotFound")

    assert client.large_person_group.get(gallery.group_id).name == "Conformance gallery"
    assert other.large_person_group.get(other_gallery.group_id).name == "Other's gallery"


# ---- last: the ISV is cut off ----


@pytest.mark.irreversible
def test_a_cut_off_isvs_tokens_are_refused(
    client, client_token, http, endpoint, admin_key, isv_resource_id, sts, client_resource_id, gallery, faces, photos
):
    """Once the operator cuts the ISV off (admin API), the client's token that was honoured a moment before is 403
    IsvNotActive on every gated call, the ISV can issue no more tokens (403 NotAnIsv), and management, which needs
    no token, still works. Irreversible, so it runs last."""
    headers = lat(client_token)
    before = client.face.identify([faces["obama3"]], large_person_group_id=gallery.group_id, custom_headers=headers)
    assert before[0].candidates[0].person_id == gallery.persons["Obama"]

    resp = http.post(
        f"{endpoint}/admin{isv_resource_id}/isv/cutOff",
        headers={"Authorization": f"Bearer {admin_key}"},
        timeout=HTTP_TIMEOUT,
    )
    assert resp.status_code == 200, f"cut-off failed: {resp.status_code} {resp.text}"

    for call in (
        lambda: client.face.identify([faces["obama3"]], large_person_group_id=gallery.group_id, custom_headers=headers),
        lambda: client.face.detect_with_stream(image(photos["obama3"]), custom_headers=headers),
        lambda: client.face.verify_face_to_face(faces["obama3"], faces["obama"], custom_headers=headers),
        lambda: client.face.find_similar(faces["obama3"], face_ids=[faces["obama"]], custom_headers=headers),
    ):
        with pytest.raises(APIErrorException) as e:
            call()
        refused(e, "IsvNotActive")

    resp = sts.request(client_resource_id)
    assert resp.status_code == 403, f"a cut-off ISV issued a token: {resp.status_code} {resp.text}"
    assert resp.json()["error"]["code"] == "NotAnIsv", resp.text

    assert client.large_person_group.get(gallery.group_id, custom_headers=headers).name == "Conformance gallery"
