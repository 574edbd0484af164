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
    # Bumped when the user signs out (of the admin UI or of a login gate): every UI
    # session and every gate session of the user ends, on every browser
    # (portway.accounts.gate.end_sessions). API tokens are not touched.
    session_generation = models.PositiveIntegerField(default=0)

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
            f"{self.password}\0{self.token_generation}\0{self.session_generation}",
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


class ApiToken(models.Model):
    """A named, long-lived API token a user made for a script (not NPM's login token).

    The secret is shown once at creation; only its SHA-256 is stored (the secret is 32
    random bytes, so a fast hash is enough: there is nothing to guess). `key` is the
    public half of the token text (`pwt_<key>_<secret>`) used to find the row.
    """

    SCOPES = [("read", "read-only"), ("full", "full")]

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    key = models.CharField(max_length=24, unique=True)
    secret_hash = models.CharField(max_length=64)
    scope = models.CharField(max_length=10, choices=SCOPES, default="read")
    created_on = models.DateTimeField(auto_now_add=True)
    expires_on = models.DateTimeField()
    last_used_on = models.DateTimeField(null=True, blank=True)
    last_used_from = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "name"], name="api_token_unique_name")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.user_id})"


class TwoFactor(models.Model):
    """A user's TOTP (RFC 6238) set-up and backup codes.

    `secret` and `pending_secret` are encrypted with a key derived from the installation's
    signing key (the 0600 secret_key file), so a copy of the database alone does not hold
    them; backup codes are stored as keyed hashes, each removed once used. `last_step` is
    the last accepted 30-second time step: a code is accepted once (RFC 6238 section 5.2).
    """

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="two_factor")
    secret = models.TextField(blank=True, default="")
    pending_secret = models.TextField(blank=True, default="")
    enabled = models.BooleanField(default=False)
    enabled_on = models.DateTimeField(null=True, blank=True)
    last_step = models.BigIntegerField(default=0)
    backup_codes = models.JSONField(default=list)
    modified_on = models.DateTimeField(auto_now=True)


class LoginThrottle(models.Model):
    """Failed login attempts counted under one key: an address, or an account at an address.

    Kept in the database so every Portway process and every database backend shares it.
    After `FREE_ATTEMPTS` failures each further one blocks the key for an exponentially
    growing time, capped (see `portway.accounts.throttle`); a success clears the key.
    """

    key = models.CharField(max_length=300, unique=True)
    failures = models.PositiveIntegerField(default=0)
    blocked_until = models.DateTimeField(null=True, blank=True)
    last_failure = models.DateTimeField(null=True, blank=True)


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
