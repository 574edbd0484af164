"""nginx configuration as data, and its one serialiser.

Portway never builds nginx text by pasting strings: every directive is a `Directive`
(name, arguments, optional block) and `serialize` is the only place that turns them
into text, quoting every argument that is not a plain word. The single exception is
`Raw`, used for an administrator's advanced config, which is checked for balanced
braces before it gets here (portway.core.fields.balanced_config) and tested by
`nginx -t` before it goes live.

Grammar reference: https://nginx.org/en/docs/beginners_guide.html#conf_structure
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

# A bare nginx word: no whitespace, quotes, ';', '{', '}', '#' or backslash.
_BARE = re.compile(r"^[A-Za-z0-9_./:@=*~^+,\-\[\]$()|?!%&<>]+$")


@dataclass(frozen=True)
class Directive:
    """`name arg1 arg2;` or, with `block`, `name arg1 { ... }`."""

    name: str
    args: Sequence[str] = ()
    block: Sequence[Node] | None = None

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", self.name):
            raise ValueError(f"not an nginx directive name: {self.name!r}")


@dataclass(frozen=True)
class Comment:
    """`# text`; newlines in text are folded so a comment cannot end early."""

    text: str


@dataclass(frozen=True)
class Raw:
    """Administrator-supplied text inserted as is (see module docstring)."""

    text: str


@dataclass(frozen=True)
class Blank:
    """An empty line, for readability of generated files."""


@dataclass(frozen=True)
class MapEntry:
    """A `key value;` line inside a `map` or `types` block; both sides are quoted as needed.

    `default` as key is written bare (nginx's keyword).
    """

    key: str
    value: str


Node = Directive | Comment | Raw | Blank | MapEntry


def d(name: str, *args: str | int, block: Iterable[Node] | None = None) -> Directive:
    """Shorthand: `d("listen", 443, "ssl")`, `d("location", "/", block=[...])`."""
    return Directive(name, tuple(str(a) for a in args), None if block is None else tuple(block))


def quote(arg: str) -> str:
    """Render one argument: bare when safe, otherwise double-quoted with escapes."""
    if arg != "" and _BARE.match(arg):
        return arg
    escaped = arg.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f'"{escaped}"'


def serialize(nodes: Iterable[Node], indent: int = 0) -> str:
    """nginx text for `nodes`, 4-space indented, ending with a newline."""
    lines: list[str] = []
    _emit(nodes, indent, lines)
    return "\n".join(lines) + "\n"


def _emit(nodes: Iterable[Node], indent: int, lines: list[str]) -> None:
    pad = "    " * indent
    for node in nodes:
        if isinstance(node, Blank):
            lines.append("")
        elif isinstance(node, Comment):
            text = " ".join(node.text.splitlines())
            lines.append(f"{pad}# {text}")
        elif isinstance(node, MapEntry):
            key = "default" if node.key == "default" else quote(node.key)
            lines.append(f"{pad}{key} {quote(node.value)};")
        elif isinstance(node, Raw):
            for line in node.text.replace("\r\n", "\n").split("\n"):
                lines.append(f"{pad}{line.rstrip()}" if line.strip() else "")
        else:
            head = " ".join([node.name, *(quote(a) for a in node.args)])
            if node.block is None:
                lines.append(f"{pad}{head};")
            else:
                lines.append(f"{pad}{head} {{")
                _emit(node.block, indent + 1, lines)
                lines.append(f"{pad}}}")


@dataclass
class ConfigFile:
    """One generated file: a path relative to the generation directory and its nodes."""

    relative_path: str
    nodes: list[Node] = field(default_factory=list)
    host_key: str | None = None  # e.g. "proxy-5": which host the file belongs to
    # A file the config serves rather than parses (e.g. the default site's HTML page):
    # written verbatim and readable by nginx's workers; `nodes` is then empty.
    content: str | None = None

    @property
    def served(self) -> bool:
        """Whether nginx's workers read this file at request time (0644, not 0600)."""
        return self.content is not None

    def text(self) -> str:
        return self.content if self.content is not None else serialize(self.nodes)
