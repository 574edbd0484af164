"""Member names of archives Portway reads (NPM backup uploads, Portway backups).

An archive member's name is text someone else wrote; it decides where a file is written
only after `member_path` turned it into a relative path that stays inside the directory
being written: no absolute path (`/x`, `C:x`), no `..`, no backslash, no control
character. Which member types and paths a reader then accepts, and its size caps, are its
own (an NPM upload skips inner symbolic links; a Portway backup holds only its files).
"""

from __future__ import annotations

from typing import Literal

Problem = Literal["unusable name", "absolute path", "outside"]


class UnsafeMember(ValueError):
    """A member name that could write outside the extraction directory.

    Attributes:
        name: the member's name as the archive gives it.
        problem: "unusable name" (empty, a backslash or a control character),
            "absolute path" (`/x` or a drive letter), or "outside" (a `..` part).
    """

    def __init__(self, name: str, problem: Problem) -> None:
        super().__init__(f"the member {name!r}: {problem}")
        self.name = name
        self.problem: Problem = problem


def member_path(name: str) -> str:
    """The relative POSIX path an archive member `name` may be written to.

    Empty and `.` parts are dropped (`./data/x` and `data//x` are `data/x`; a directory's
    trailing `/` goes); the result is "" for the archive's root itself.

    Raises:
        UnsafeMember: the name is empty, holds a backslash or a control character
            (U+0000-U+001F, U+007F), is absolute (`/x`, `C:x`), or has a `..` part.
    """
    if not name or "\\" in name or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise UnsafeMember(name, "unusable name")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise UnsafeMember(name, "absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise UnsafeMember(name, "outside")
    return "/".join(parts)
