"""Password hashes for nginx's auth_basic, and the per-list user files nginx reads.

Scheme: bcrypt (`$2b$`), from the `bcrypt` package (pyca, well kept). nginx's auth_basic
checks a hash with the system's crypt(3) (https://nginx.org/r/auth_basic_user_file);
Debian and Ubuntu ship libxcrypt and Alpine ships musl, and both verify `$2b$`. The
alternatives are worse: `{SSHA}` and `$apr1$` (nginx's built-ins) are one salted SHA-1 and
1000 rounds of MD5; Python's `crypt` module (for sha512-crypt) is gone in Python 3.13;
passlib is unmaintained.

The cost is deliberately low (2^5 rounds, about 2 ms on one core): nginx checks the hash
on every request that carries credentials, in its event loop, so a page with 30 assets
costs 30 checks. That is glibc's default sha512-crypt cost, and far above the built-ins.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import bcrypt

BCRYPT_ROUNDS = 5
# bcrypt reads at most 72 bytes of a password; longer ones are refused at the edge rather
# than silently truncated (the `bcrypt` package raises for them since 5.0).
MAX_PASSWORD_BYTES = 72


def hash_password(password: str) -> str:
    """The `$2b$` hash of `password` (1-72 bytes of UTF-8), for an htpasswd line."""
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(BCRYPT_ROUNDS)).decode("ascii")


def verify_password(password: str, hashed: str) -> bool:
    """Whether `password` matches a hash made by hash_password."""
    try:
        return bcrypt.checkpw(password.encode(), hashed.encode("ascii"))
    except ValueError:
        return False


def htpasswd_text(users: Iterable[tuple[str, str]]) -> str:
    """`user:hash` lines for (username, hash) pairs, already validated (no `:` or newline)."""
    return "".join(f"{username}:{hashed}\n" for username, hashed in users)


def write_private(path: Path, text: str, group: int | None = None) -> None:
    """Write `text` to `path` atomically, readable by its owner (and `group`, if given).

    The file holds password hashes only, yet it stays as private as nginx allows: 0600
    when nginx's workers run as this user, 0640 with the workers' group when Portway runs
    as root (workers then run as www-data and read the file per request).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        if group is not None:
            os.chown(temporary, -1, group)
            os.chmod(temporary, 0o640)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
