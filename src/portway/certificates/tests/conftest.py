"""Fixtures for certificate tests: a private data directory, users and API clients."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from portway.accounts import tokens
from portway.accounts.models import User


@pytest.fixture(autouse=True)
def data_dir(settings: Any, tmp_path: Path) -> Path:
    """Each test gets its own DATA_DIR, so certificate files never leak between tests."""
    settings.DATA_DIR = tmp_path
    # Creating users is the slow part otherwise; hashing strength is not under test here.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return tmp_path


def client_for(user: User) -> Client:
    """A test client sending a real bearer token for `user`."""
    token, _ = tokens.issue(user)
    return Client(headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def admin(db: None) -> User:
    return User.objects.create_user("admin@example.com", "pw12345678", is_admin=True, name="Admin")


@pytest.fixture
def api(admin: User) -> Client:
    return client_for(admin)
