"""A proxy host's `meta` is capped as a certificate's: 64 KiB of JSON, 16 levels deep."""

from __future__ import annotations

from typing import Any

import pytest

from portway.hosts.models import ProxyHost
from portway.hosts.tests.test_api import BASE, VALID, snapshot, url
from portway.testing.api import api_client, expect_error, make_admin, send

pytestmark = pytest.mark.django_db


def _nested(depth: int) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for _ in range(depth - 1):
        meta = {"x": meta}
    return meta


@pytest.fixture
def client(settings: Any):  # noqa: ANN201
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return api_client(make_admin())


@pytest.mark.parametrize(
    ("meta", "reason"),
    [
        ({"note": "x" * (64 * 1024)}, "must be at most 64 KiB of JSON"),
        ({f"k{i}": i for i in range(10000)}, "must be at most 64 KiB of JSON"),
        (_nested(17), "must not nest objects and arrays more than 16 deep"),
        ({"list": [[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]}, "more than 16 deep"),
        ("a string", ""),  # wording: the validation messages are not this test's concern
    ],
    ids=["large-value", "many-keys", "deep-object", "deep-array", "not-an-object"],
)
def test_oversized_meta_is_a_400_naming_meta_and_changes_nothing(client, meta, reason):  # noqa: ANN001
    before = snapshot()
    message = expect_error(send(client, "post", BASE, {**VALID, "meta": meta}), 400)
    assert message.startswith("data/meta "), message
    assert reason in message
    assert snapshot() == before

    host = send(client, "post", BASE, {**VALID, "meta": {"owner": "tool"}}).json()
    before = snapshot()
    message = expect_error(send(client, "put", url(host["id"]), {"meta": meta}), 400)
    assert message.startswith("data/meta "), message
    assert snapshot() == before
    assert ProxyHost.objects.get(pk=host["id"]).meta == {"owner": "tool"}


def test_meta_up_to_the_caps_is_stored_and_returned(client):  # noqa: ANN001
    meta = {"note": "x" * (60 * 1024), "deep": _nested(15)}
    response = send(client, "post", BASE, {**VALID, "meta": meta})
    assert response.status_code == 201, response.content[:300]
    returned = response.json()["meta"]
    assert returned["note"] == meta["note"] and returned["deep"] == meta["deep"]
