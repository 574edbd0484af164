"""Fixtures for the accounts tests: an admin, a non-admin, clients for both."""

from __future__ import annotations

import pytest
from django.test import Client

from portway.accounts.models import User
from portway.testing.api import api_client, make_admin, make_user


@pytest.fixture
def admin(db) -> User:
    return make_admin()


@pytest.fixture
def admin_client(admin: User) -> Client:
    return api_client(admin)


@pytest.fixture
def user(db) -> User:
    return make_user("user@example.com", name="Ursula User")


@pytest.fixture
def user_client(user: User) -> Client:
    return api_client(user)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings) -> None:
    # The production hasher is slow on purpose; these tests hash hundreds of passwords
    # and check behaviour around hashing, not the hasher's strength.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
