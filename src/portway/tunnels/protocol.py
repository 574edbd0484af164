"""What the tunnel service and the `portway tunnel connect` client agree on.

Imports nothing of Django: the client runs on a member's laptop with no server parts.

The wire (one WebSocket per TCP connection, as `cloudflared access tcp` does):
- the upgrade request carries `Authorization: Bearer <access key or user API token>`;
  the service authenticates it and connects to the tunnel's fixed target before it
  accepts the upgrade, so a refused request answers an HTTP status with the reason in
  the `X-Portway-Tunnel-Error` header (401 wrong or expired key, 403 not allowed or
  tunnel disabled, 502 target unreachable, 503 connection limit reached);
- after the upgrade, binary frames carry the TCP bytes and nothing else; an empty
  binary frame says "no more bytes this way" (a TCP half-close; generic clients such as
  websocat never send one and simply close, which ends both directions);
- the service closes with 1000 once both directions ended, or with one of the
  CLOSE_* codes below, whose reason the client prints.
"""

from __future__ import annotations

import hashlib
import re

ERROR_HEADER = "X-Portway-Tunnel-Error"
TUNNEL_HEADER = "X-Portway-Tunnel"  # set by nginx: which tunnel host the name belongs to
KEY_PREFIX = "ptk_"
KEY_PATTERN = re.compile(r"^ptk_([A-Za-z0-9]{16})_([A-Za-z0-9_-]{43})$")
API_TOKEN_PATTERN = re.compile(r"^pwt_([A-Za-z0-9]{16})_([A-Za-z0-9_-]{43})$")
CHUNK = 1024 * 1024  # bytes read from a TCP socket per frame (fewer, larger frames)
MAX_FRAME = 4 * 1024 * 1024
PING_SECONDS = 30  # well under the 100 s idle cut of Cloudflare and of most proxies

CLOSE_TARGET_ERROR = 4000
CLOSE_CREDENTIAL_REVOKED = 4001
CLOSE_TUNNEL_DISABLED = 4002
CLOSE_KILLED = 4003
CLOSE_PROTOCOL = 4004
CLOSE_SHUTDOWN = 1001

CLOSE_MESSAGES = {
    CLOSE_TARGET_ERROR: "the connection to the tunnel's target failed",
    CLOSE_CREDENTIAL_REVOKED: "the key was revoked or has expired",
    CLOSE_TUNNEL_DISABLED: "the tunnel was disabled or deleted",
    CLOSE_KILLED: "an administrator ended the session",
    CLOSE_PROTOCOL: "the peer sent something other than binary frames",
    CLOSE_SHUTDOWN: "the tunnel service is shutting down",
}


def secret_hash(secret: str) -> str:
    """SHA-256 (hex) of a key's secret half: what is stored and compared."""
    return hashlib.sha256(secret.encode()).hexdigest()
