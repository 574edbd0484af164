"""Validators for the values that end up in nginx config.

Each function takes the raw client value and returns the normalised value, or raises
`ValueError` with a reason phrased for a person ("must be ..."). Callers attach the field
path (see `portway.core.errors.FieldError`). Nothing here trusts nginx quoting: a value
that passes is made only of characters that cannot end a directive, open a block or start
a comment.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata

import idna

MAX_NAME_LENGTH = 253  # RFC 1035 2.3.4, in presentation form without the trailing dot
MAX_LABEL_LENGTH = 63
# LDH labels, plus "_" which internal service names (Docker, Kubernetes) commonly carry.
_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_FORBIDDEN = re.compile(r"""[;'"{}#\s\\$`]""")
# In a regex location `$` (end anchor) and `\` (escape) are ordinary regex syntax; nginx
# does not expand variables in a location pattern, and the renderer quotes what needs it.
_FORBIDDEN_IN_REGEX = re.compile(r"""[;'"{}#\s`]""")
_SAFE_PATH = re.compile(r"^/[A-Za-z0-9._~%/+:@!,=-]*$")
_SAFE_REGEX = re.compile(r"^[A-Za-z0-9._~%/+:@!,=^$()|\[\]*?\\-]+$")
_LOCATION_MODIFIERS = ("=", "^~", "~", "~*")


def _reject_unsafe(value: str, forbidden: re.Pattern[str] = _FORBIDDEN) -> None:
    if value == "" or value.strip() == "":
        raise ValueError("must not be empty")
    bad = forbidden.search(value)
    if bad:
        char = bad.group(0)
        shown = {"\n": "a newline", "\r": "a carriage return", "\t": "a tab", " ": "a space"}
        raise ValueError(f"must not contain {shown.get(char, repr(char))}")


def _to_ascii(name: str) -> str:
    """Lowercase ASCII (punycode) form of `name`; raises ValueError if IDNA rejects it."""
    if name.isascii():
        return name.lower()
    try:
        return idna.encode(name, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise ValueError(f"is not a valid internationalised domain name ({exc})") from exc


def unicode_name(name: str) -> str:
    """The Unicode form of a normalised name, for people: `xn--bcher-kva.example` →
    `bücher.example` (RFC 5891 section 5); wildcards keep their `*.`; a name whose
    punycode does not decode is returned as it is."""
    if "xn--" not in name:
        return name
    wildcard = name.startswith("*.")
    try:
        text = idna.decode(name[2:] if wildcard else name)
    except (idna.IDNAError, UnicodeError, ValueError):
        return name
    return f"*.{text}" if wildcard else text


def search_form(query: str) -> str:
    """A search string in the form Unicode names are stored in (UTS 46 mapped, NFC,
    lowercase), so `Bücher` finds `bücher.example`; unmappable text is only lowercased."""
    try:
        return idna.uts46_remap(query, std3_rules=False, transitional=False)
    except (idna.IDNAError, UnicodeError, ValueError):
        return unicodedata.normalize("NFC", query).lower()


def _check_labels(name: str, *, what: str) -> None:
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"must be at most {MAX_NAME_LENGTH} characters long")
    for label in name.split("."):
        if label == "":
            raise ValueError(f"must not contain an empty label (two dots in a row) in {what}")
        if len(label) > MAX_LABEL_LENGTH:
            raise ValueError(f"has a label longer than {MAX_LABEL_LENGTH} characters")
        if label == "*":
            raise ValueError("may use '*' only as the whole first label, as in *.example.com")
        if "*" in label:
            raise ValueError(
                "may use '*' only as the whole first label, as in *.example.com "
                "(nginx does not match partial wildcards such as cam*.example.com)"
            )
        if not _LABEL.match(label):
            raise ValueError(
                f"has an invalid label {label!r}: use letters, digits and hyphens, "
                "not starting or ending with a hyphen"
            )


def domain_name(raw: str) -> str:
    """Normalise a server name: lowercase, trailing dot dropped, Unicode to punycode.

    Accepts `example.com`, `App.Example.COM.`, `*.example.com`, `bücher.example`;
    surrounding whitespace is trimmed.
    Raises ValueError for empty names, a lone `*`, partial wildcards (`cam*.x`), labels
    over 63 or names over 253 characters, and anything carrying nginx syntax characters.
    """
    if not isinstance(raw, str):
        raise ValueError("must be text (a JSON string)")
    raw = raw.strip()
    _reject_unsafe(raw)
    name = raw[:-1] if raw.endswith(".") else raw
    if name == "":
        raise ValueError("must not be empty")
    if name == "*":
        raise ValueError("must not be a lone '*'; use *.example.com for a wildcard")
    _reject_pasted_name(name)
    wildcard = name.startswith("*.")
    base = name[2:] if wildcard else name
    base = _to_ascii(base)
    _check_labels(base, what="the name")
    full = f"*.{base}" if wildcard else base
    if len(full) > MAX_NAME_LENGTH:
        raise ValueError(f"must be at most {MAX_NAME_LENGTH} characters long")
    return full


def _reject_pasted_name(name: str) -> None:
    """A URL or `name:port` pasted as a server name gets what to remove, not a label error."""
    scheme, host, port, path = _split_pasted_address(name)
    if scheme is None and port is None and not path:
        return
    steps = []
    if scheme:
        steps.append(f"remove {scheme}://")
    if port is not None:
        steps.append(f"remove :{port} (the name is served on the HTTP and HTTPS ports)")
    if path:
        steps.append(f"remove {path} (a name has no path; custom locations route paths)")
    example = f" and enter only {host}" if host else ""
    raise ValueError(f"is not a domain name: {', '.join(steps)}{example}")


def domain_names(raw: list[str], *, max_items: int = 100) -> list[str]:
    """Validate a list of server names; returns them normalised.

    Raises:
        ValueError: with the index of the first bad item as `args[1]` (None for the list).
    """
    if not isinstance(raw, list):
        raise IndexedValueError(None, "must be a list of domain names")
    if len(raw) == 0:
        raise IndexedValueError(None, "must contain at least one domain name")
    if len(raw) > max_items:
        raise IndexedValueError(None, f"must contain at most {max_items} domain names")
    names: list[str] = []
    for index, item in enumerate(raw):
        try:
            name = domain_name(item)
        except ValueError as exc:
            raise IndexedValueError(index, f"{_quote(item)} {exc}") from exc
        if name in names:
            raise IndexedValueError(index, f"{_quote(item)} is listed twice")
        names.append(name)
    return names


class IndexedValueError(ValueError):
    """A ValueError about one item of a list: `index` is its position, None for the list."""

    def __init__(self, index: int | None, reason: str) -> None:
        super().__init__(reason)
        self.index = index
        self.reason = reason


def _quote(value: object) -> str:
    text = str(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return '"' + text.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'


_URL_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_HOST_AND_PORT = re.compile(r"^(?P<host>\[[^\]]*\]|[^:\[\]]*):(?P<port>[^:]*)$")


def _split_pasted_address(value: str) -> tuple[str | None, str, str | None, str]:
    """(scheme, host, port, path) of what may be a URL or `host:port` pasted whole.

    `http://10.0.0.5:8080/app` → ("http", "10.0.0.5", "8080", "/app"); a bare IPv6
    address (several colons, no brackets) is left whole as the host.
    """
    scheme = None
    match = _URL_SCHEME.match(value)
    if match:
        scheme = match.group(1).lower()
        value = value[match.end() :]
    host, path = value, ""
    cut = min((value.find(c) for c in "/?#" if c in value), default=-1)
    if cut >= 0:
        host, path = value[:cut], value[cut:]
    port = None
    with_port = _HOST_AND_PORT.match(host)
    # one ":" outside brackets is a port ("backend:8080", "backend:abc", "[::1]:8080")
    if with_port:
        host, port = with_port.group("host"), with_port.group("port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return scheme, host, port, path


def _pasted_address(
    raw: str,
    value: str,
    path_field: str | None,
    port_field: str = "forward_port",
    scheme_field: str | None = "forward_scheme",
) -> str | None:
    """What to do when `value` is a URL or `host:port` rather than a host; None if not."""
    scheme, host, port, path = _split_pasted_address(value)
    if scheme is None and port is None and not path:
        return None
    steps = []
    if scheme_field is None and scheme:
        steps.append(f"remove {scheme}:// (a stream forwards plain TCP/UDP: no scheme)")
    elif scheme in ("http", "https"):
        steps.append(f"remove the scheme {scheme}:// and put it in {scheme_field}")
    elif scheme:
        steps.append(f"remove {scheme}:// ({scheme_field} is http or https)")
    if port is not None:
        if port.isdigit() and 1 <= int(port) <= 65535:
            steps.append(f"put the port {int(port)} in {port_field}")
        else:
            steps.append(f"remove the ':' and put the port (1-65535) in {port_field}")
    if path not in ("", "/"):
        if path_field:
            steps.append(f"put the path {path} in {path_field}")
        else:
            steps.append(
                f"remove the path {path} (requests keep their own path; a custom location "
                "can send a path to another service)"
            )
    what = "a URL" if scheme else "an address with a port" if port is not None else "a path"
    try:
        address = forward_host(host, path_field=path_field, port_field=port_field) if host else ""
    except ValueError:
        address = ""
    if address:
        steps.append(f"enter only {address} here")
    elif host:
        steps.append("enter only the host name or IP address here")
    else:
        steps.append("enter the host name or IP address of the service here")
    return f"{_quote(raw)} is {what}: " + ", ".join(steps[:-1]) + f" and {steps[-1]}"


def forward_host(
    raw: str,
    *,
    path_field: str | None = None,
    port_field: str = "forward_port",
    scheme_field: str | None = "forward_scheme",
) -> str:
    """Validate an upstream address: hostname, IPv4 or IPv6 (brackets optional).

    Surrounding whitespace is trimmed. Returns a hostname lowercased, or the compressed IP
    address without brackets (the renderer adds them for IPv6). A pasted URL or
    `host:port` is refused with what to do instead ("remove the scheme http:// and put it
    in forward_scheme", "put the port 8080 in forward_port"); `path_field` names the field
    a pasted path belongs in (a custom location's forward_path), None when there is none;
    `port_field` and `scheme_field` name where a port and a scheme go (a stream's
    `forwarding_port`; `scheme_field` None: the object has no scheme).

    Raises:
        ValueError: with a reason phrased for a person.
    """
    if not isinstance(raw, str):
        raise ValueError("must be text (a host name or IP address)")
    value = raw.strip()
    if value == "":
        raise ValueError("must not be empty: enter the host name or IP address of the service")
    _reject_unsafe(value)
    pasted = _pasted_address(raw, value, path_field, port_field, scheme_field)
    if pasted:
        raise ValueError(pasted)
    if value.startswith("[") and value.endswith("]"):
        value = value[1:-1]
    if ":" in value:
        try:
            address = ipaddress.IPv6Address(value)
        except ValueError as exc:
            raise ValueError(
                f"{_quote(raw)} is not a valid IPv6 address: enter a host name, an IPv4 "
                f"address or an IPv6 address such as fd00::5 (and the port in {port_field})"
            ) from exc
        if address.scope_id:
            raise ValueError(
                f"{_quote(raw)} must not carry an IPv6 zone index (%...): use a global or "
                "unique-local address"
            )
        return address.compressed
    if re.fullmatch(r"[0-9.]+", value):
        try:
            return str(ipaddress.IPv4Address(value))
        except ValueError as exc:
            raise ValueError(
                f"{_quote(raw)} is not a valid IPv4 address: use four numbers from 0 to 255 "
                "separated by dots, such as 10.0.0.5"
            ) from exc
    if value.endswith("."):
        value = value[:-1]
    if "*" in value:
        raise ValueError("must not contain '*': enter the one host the requests go to")
    try:
        value = _to_ascii(value)
        _check_labels(value, what="the host name")
    except ValueError as exc:
        raise ValueError(f"{_quote(raw)} {exc}") from exc
    return value


def location_path(raw: str) -> str:
    r"""Validate a custom location: `/prefix`, or a modifier (`=`, `^~`, `~`, `~*`) and a path.

    Regex locations (`~`, `~*`) may use regex characters (including the `$` anchor and `\`
    escapes, as in `~ \.php$`), but never `;`, quotes, braces, `#` or whitespace, so the
    rendered `location` line cannot be broken out of.
    """
    if not isinstance(raw, str):
        raise ValueError("must be text (a JSON string)")
    value = raw.strip()
    modifier = ""
    head, _, rest = value.partition(" ")
    if head in _LOCATION_MODIFIERS and rest:
        modifier, value = head, rest.strip()
    if modifier in ("~", "~*"):
        _reject_unsafe(value, _FORBIDDEN_IN_REGEX)
        if not _SAFE_REGEX.match(value):
            raise ValueError(
                f"{_quote(raw)} may use only letters, digits and the regex characters "
                r"._~%/+:@!,=^$()|[]*?\-"
            )
        if (len(value) - len(value.rstrip("\\"))) % 2 == 1:
            raise ValueError(f"{_quote(raw)} must not end with a lone backslash")
    else:
        _reject_unsafe(value)
        if not _SAFE_PATH.match(value):
            raise ValueError(
                f"{_quote(raw)} must start with '/' and use only letters, digits and ._~%/+:@!,=-"
            )
    return f"{modifier} {value}" if modifier else value


def location_blocks(path: str) -> list[tuple[str, str]]:
    """The nginx `location`s (modifier, path) a validated custom location path becomes.

    A prefix path matches whole path segments, so `/sub` never captures `/subway`:
    `/sub` → `= /sub` and `/sub/`; `/sub/` → `/sub/` alone (nginx redirects `/sub` to it);
    `^~ /sub` → `= /sub` and `^~ /sub/`; `=` and regex paths stay as they are.
    https://nginx.org/r/location
    """
    modifier, _, value = path.rpartition(" ")
    if modifier in ("=", "~", "~*"):
        return [(modifier, value)]
    base = value.rstrip("/")
    blocks = [("=", base)] if base and not value.endswith("/") else []
    return [*blocks, (modifier, base + "/")]


def location_clash_key(modifier: str, path: str) -> str:
    """What nginx compares to report a "duplicate location" (`^~` and plain prefix clash)."""
    return path if modifier in ("", "^~") else f"{modifier} {path}"


def forward_path(raw: str | None) -> str:
    """Validate the optional path a custom location forwards to ("" when absent)."""
    if raw is None or raw == "":
        return ""
    if not isinstance(raw, str):
        raise ValueError("must be text (a JSON string)")
    value = raw if raw.startswith("/") else "/" + raw
    _reject_unsafe(value)
    if not _SAFE_PATH.match(value):
        raise ValueError(
            f"{_quote(raw)} must be a path using only letters, digits and ._~%/+:@!,=-"
        )
    return value


def _unsafe_character(text: str) -> str | None:
    """A description of the first character nginx config text must not hold, or None.

    Control characters other than tab, LF and CR, and the Unicode line and paragraph
    separators (U+2028, U+2029; U+0085 is a control character): nginx takes them as
    part of a word, while editors and log readers break lines at them, so a directive
    would not be what the administrator sees.
    """
    for index, char in enumerate(text):
        if char in "\t\n\r":
            continue
        if unicodedata.category(char) in ("Cc", "Zl", "Zp"):
            line = text.count("\n", 0, index) + 1
            name = unicodedata.name(char, "a control character")
            return f"U+{ord(char):04X} ({name}) on line {line}"
    return None


def balanced_config(text: str) -> str:
    """Check raw nginx text (advanced config): safe characters, balanced braces and quotes.

    Advanced config is placed inside a server block; text that closed that block early
    could add directives to the http context and affect every host, so it is refused
    before nginx sees it. The text is read the way nginx's own tokenizer reads it
    (ngx_conf_read_token in src/core/ngx_conf_file.c): `#` starts a comment and a quote
    starts a string only at the start of a word (`a#;` and `a"b` are plain words), a
    backslash escapes the next character, and `${` inside a word opens no block. Also
    refused:
    control characters and Unicode line separators (see `_unsafe_character`), and a
    backslash ending a line outside quotes and comments (nginx would join the line with
    the next one, which is Portway's own config after the last line).

    Raises:
        ValueError: naming the character, line or brace at fault.
    """
    unsafe = _unsafe_character(text)
    if unsafe:
        raise ValueError(f"must not contain the character {unsafe}")
    depth = 0
    quote: str | None = None
    escaped = False
    in_comment = False
    at_word_start = True  # nginx's last_space: between words
    after_dollar = False  # nginx's variable: "${" is part of the word
    line = 1
    for index, char in enumerate(text):
        if char == "\n":
            line += 1
        if in_comment:
            in_comment = char != "\n"
            continue
        if escaped:
            escaped = False
            continue
        if char == "\\":
            if quote is None and text[index + 1 : index + 2] in ("", "\n", "\r"):
                raise ValueError(
                    f"has a backslash at the end of line {line}; nginx would join that line "
                    "with the next one"
                )
            escaped = True
            at_word_start = after_dollar = False
            continue
        if quote:
            if char == quote:
                quote = None
                at_word_start = True
            continue
        if at_word_start:
            if char in " \t\r\n;":
                continue
            if char == "{":
                depth += 1
            elif char == "}":
                depth -= 1
                if depth < 0:
                    raise ValueError("has a '}' that closes the server block; braces must balance")
            elif char == "#":
                in_comment = True
            elif char in "\"'":
                quote = char
                at_word_start = False
            else:
                at_word_start = False
                after_dollar = char == "$"
            continue
        if char == "{" and after_dollar:
            continue
        after_dollar = char == "$"
        if char in " \t\r\n;":
            at_word_start = True
        elif char == "{":
            depth += 1
            at_word_start = True
    if quote:
        raise ValueError("has an unterminated quoted string")
    if depth != 0:
        raise ValueError("has an unclosed '{'; braces must balance")
    return text


def redirect_target(raw: str) -> str:
    """Validate a redirection host's `forward_domain_name`: `host[:port][/path]`.

    NPM writes it after the scheme in `return <code> <scheme>://<forward_domain_name>...`,
    so it is a host name or IP address (IPv6 in brackets), an optional port 1-65535 and an
    optional path of safe characters; the scheme is chosen in forward_scheme. Surrounding
    whitespace is trimmed; the host is normalised as forward_host does (lowercase,
    punycode), and an IPv6 address is returned in brackets.

    Raises:
        ValueError: with a reason phrased for a person (a scheme, `;`, a space, `$`...).
    """
    if not isinstance(raw, str):
        raise ValueError("must be text (a domain name, optionally with :port and a path)")
    value = raw.strip()
    if value == "":
        raise ValueError("must not be empty: enter the domain name to redirect to")
    scheme_match = _URL_SCHEME.match(value)
    if scheme_match:
        scheme = scheme_match.group(1).lower()
        rest = value[scheme_match.end() :]
        hint = (
            "put it in forward_scheme"
            if scheme in ("http", "https")
            else "forward_scheme is auto, http or https"
        )
        raise ValueError(
            f"{_quote(raw)} must not start with a scheme: remove {scheme}:// ({hint})"
            + (f" and enter only {_quote(rest)}" if rest else "")
        )
    _reject_unsafe(value)
    cut = value.find("/")
    hostport, path = (value, "") if cut < 0 else (value[:cut], value[cut:])
    if "?" in hostport or "#" in hostport:
        raise ValueError(f"{_quote(raw)} must be a domain name, optionally with :port and a path")
    port = None
    with_port = _HOST_AND_PORT.match(hostport)
    host = hostport
    if with_port:
        host, port = with_port.group("host"), with_port.group("port")
        if not (port.isdigit() and 1 <= int(port) <= 65535):
            raise ValueError(f"{_quote(raw)} has the port {_quote(port)}: use 1 to 65535")
    if not host:
        raise ValueError(f"{_quote(raw)} has no domain name before the port or path")
    if host.startswith("[") != host.endswith("]") or (":" in host and not host.startswith("[")):
        raise ValueError(f"{_quote(raw)}: write an IPv6 address in brackets, such as [fd00::5]")
    try:
        address = forward_host(host)
    except ValueError as exc:
        raise ValueError(f"{_quote(raw)}: the domain name {exc}") from None
    if ":" in address:
        address = f"[{address}]"
    if path and not _SAFE_PATH.match(path):
        raise ValueError(
            f"{_quote(raw)} has a path with characters a redirect target cannot carry: "
            "use only letters, digits and ._~%/+:@!,=-"
        )
    return address + (f":{int(port)}" if port else "") + path
