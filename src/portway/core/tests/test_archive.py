"""Archive member names: what may be written, and why the rest is refused."""

from __future__ import annotations

import pytest

from portway.core.archive import UnsafeMember, member_path


@pytest.mark.parametrize(
    ("name", "path"),
    [("data/x", "data/x"), ("./data/x", "data/x"), ("data//x", "data/x"), ("data/", "data")],
)
def test_relative_names_are_normalised(name: str, path: str) -> None:
    assert member_path(name) == path


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "unusable name"),
        ("data\\x", "unusable name"),
        ("data/bad\nname", "unusable name"),
        ("data/\x00", "unusable name"),
        ("/etc/passwd", "absolute path"),
        ("C:evil", "absolute path"),
        ("../x", "outside"),
        ("data/../../x", "outside"),
    ],
)
def test_unsafe_names_are_refused(name: str, problem: str) -> None:
    with pytest.raises(UnsafeMember) as refused:
        member_path(name)
    assert refused.value.problem == problem
