"""The Portway user: identified by e-mail, admin or not, as NPM's user object."""

from __future__ import annotations

from collections.abc import Iterator

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.db import models
from django.utils.crypto import salted_hmac


class UserManager(BaseUserManager["User"]):
    """Creates users keyed by a case-insensitively unique e-mail address."""

    def get_by_natural_key(self, username: str) -> User:
        return self.get(email__iexact=username)

    def create_user(
        self, email: str, password: str | None = None, *, is_admin: bool = False, **fields
    ) -> User:
        """Create and save a user; `password` None leaves the account without a usable password."""
        user = self.model(email=self.normalize_email(email).lower(), is_admin=is_admin, **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user


class User(AbstractBaseUser):
    """An account: NPM's user fields plus a per-section permission set."""

    # Stored lowercased (see UserManager / services) so uniqueness is case-insensitive.
    email = models.CharField(max_length=254, unique=True)
    name = models.CharField(max_length=100)
    nickname = models.CharField(max_length=100, blank=True, default="")
    avatar = models.CharField(max_length=255, blank=True, default="")
    is_admin = models.BooleanField(default=False)
    is_disabled = models.BooleanField(default=False)
    created_on = models.DateTimeField(auto_now_add=True)
    modified_on = models.DateTimeField(auto_now=True)
    # Bumped on password change and disable so outstanding API tokens and UI sessions
    # stop working (see get_session_auth_hash).
    token_generation = models.PositiveIntegerField(default=0)

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["name"]

    objects = UserManager()

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.email

    @property
    def is_active(self) -> bool:  # Django's auth backends refuse inactive users
        return not self.is_disabled

    @property
    def roles(self) -> list[str]:
        return ["admin"] if self.is_admin else []

    # Django admin compatibility
    @property
    def is_staff(self) -> bool:
        return self.is_admin

    @property
    def is_superuser(self) -> bool:
        return self.is_admin

    # UI sessions: Django keeps an HMAC of this in the session and ends the session when
    # it no longer matches. Django's own covers only the password hash; with the token
    # generation in it, disabling an account also ends its sessions for good (re-enabling
    # does not bring them back), exactly as for its API tokens.
    def get_session_auth_hash(self) -> str:
        return self._portway_session_hash(None)

    def get_session_auth_fallback_hash(self) -> Iterator[str]:
        for secret in settings.SECRET_KEY_FALLBACKS:
            yield self._portway_session_hash(secret)

    def _portway_session_hash(self, secret: str | None) -> str:
        return salted_hmac(
            "portway.accounts.User.session",
            f"{self.password}\0{self.token_generation}",
            secret=secret,
            algorithm="sha256",
        ).hexdigest()

    def has_perm(self, perm: str, obj: object = None) -> bool:
        return self.is_admin and not self.is_disabled

    def has_module_perms(self, app_label: str) -> bool:
        return self.is_admin and not self.is_disabled


class Permission(models.Model):
    """NPM's per-user permission set: which sections a non-admin sees or manages."""

    VISIBILITY = [("all", "all"), ("user", "user")]
    LEVEL = [("hidden", "hidden"), ("view", "view"), ("manage", "manage")]

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="permission")
    visibility = models.CharField(max_length=10, choices=VISIBILITY, default="user")
    proxy_hosts = models.CharField(max_length=10, choices=LEVEL, default="manage")
    redirection_hosts = models.CharField(max_length=10, choices=LEVEL, default="manage")
    dead_hosts = models.CharField(max_length=10, choices=LEVEL, default="manage")
    streams = models.CharField(max_length=10, choices=LEVEL, default="manage")
    access_lists = models.CharField(max_length=10, choices=LEVEL, default="manage")
    certificates = models.CharField(max_length=10, choices=LEVEL, default="manage")
    created_on = models.DateTimeField(auto_now_add=True)
    modified_on = models.DateTimeField(auto_now=True)


class SetupClaim(models.Model):
    """A one-time step of the installation, taken at most once (by the unique index).

    The first-run path inserts the FIRST_ADMIN row in the same transaction as the first
    administrator. Concurrent first-run requests all try the insert: the database's
    unique index admits one and makes the others wait for it to commit and then fail,
    on SQLite, PostgreSQL and MariaDB alike, with no lock held in Python.
    """

    FIRST_ADMIN = "first-admin"

    name = models.CharField(max_length=50, unique=True)
    claimed_on = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name
