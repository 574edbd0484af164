"""pytest fixtures for end-to-end tests (registered from the repository's conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from portway.testing.browser import browser_page  # noqa: F401  (a fixture)
from portway.testing.network import DNSServer, UpstreamServer
from portway.testing.process import PortwayProcess


@pytest.fixture
def upstreams() -> Iterator[Callable[[str], UpstreamServer]]:
    """Factory: `upstreams("api")` starts a real HTTP upstream named "api" on 127.0.0.1."""
    with ExitStack() as stack:

        def make(name: str) -> UpstreamServer:
            return stack.enter_context(UpstreamServer(name))

        yield make


@pytest.fixture
def dns_server() -> Iterator[DNSServer]:
    """A loopback DNS server whose `records` the test edits."""
    with DNSServer() as server:
        yield server


@pytest.fixture(scope="module")
def shared_dns_server() -> Iterator[DNSServer]:
    with DNSServer() as server:
        yield server


@pytest.fixture(scope="module")
def shared_portway(
    tmp_path_factory: pytest.TempPathFactory, shared_dns_server: DNSServer
) -> Iterator[PortwayProcess]:
    """One running Portway for a whole test module (tests use distinct domain names)."""
    process = PortwayProcess(
        tmp_path_factory.mktemp("portway") / "data",
        env={"PORTWAY_RESOLVER": shared_dns_server.address},
    )
    try:
        process.start()
        yield process
    finally:
        process.close()


@pytest.fixture
def portway(tmp_path: Path, dns_server: DNSServer) -> Iterator[PortwayProcess]:
    """A running `portway serve` (real nginx) with a fresh installation and an admin."""
    process = PortwayProcess(tmp_path / "data", env={"PORTWAY_RESOLVER": dns_server.address})
    try:
        process.start()
        yield process
    finally:
        process.close()


# ACME test servers (pebble, pebble-challtestsrv, BIND 9): see portway.testing.acme
from portway.testing.acme import acme, pebble_tls  # noqa: E402, F401
