"""TCPProxy against a tiny echo server and against the machine's Redis: forwarding and every fault switch.

The Redis is shared with other runs, so these tests use db 14, one random key with a TTL, PING/SET/GET/DEL only,
and clients that never retry (redis-py retries by default, which would hide the faults).
"""

import contextlib
import os
import socket
import socketserver
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from testkit.tcp_proxy import TCPProxy

REDIS_ADDRESS = ("127.0.0.1", 6379)
SHORT_TIMEOUT = 0.3
# Shared-server manners: db 14, and no CLIENT SETINFO on connect.
REDIS_OPTIONS = {"db": 14, "driver_info": None}


class EchoHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        with contextlib.suppress(ConnectionError):
            while data := self.request.recv(65536):
                self.request.sendall(data)


@pytest.fixture
def echo_address() -> Iterator[tuple[str, int]]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), EchoHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def echo_proxy(echo_address: tuple[str, int]) -> Iterator[TCPProxy]:
    with TCPProxy(*echo_address) as proxy:
        yield proxy


@pytest.fixture
def redis_proxy() -> Iterator[TCPProxy]:
    with TCPProxy(*REDIS_ADDRESS) as proxy:
        yield proxy


@pytest.fixture
def redis_key() -> Iterator[str]:
    key = f"tcp-proxy-test:{uuid.uuid4().hex}"
    yield key
    with redis_direct() as direct:
        direct.delete(key)


def redis_direct() -> redis.Redis:
    return redis.Redis(*REDIS_ADDRESS, socket_timeout=2, **REDIS_OPTIONS)


def redis_through(proxy: TCPProxy, timeout: float = SHORT_TIMEOUT) -> redis.Redis:
    """One connection, no retries: a fault shows on the very next command, and the one after reconnects."""
    return redis.Redis(
        host=proxy.listen_host,
        port=proxy.port,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        single_connection_client=True,
        **REDIS_OPTIONS,
    )


def connect(proxy: TCPProxy) -> socket.socket:
    return socket.create_connection(proxy.address, timeout=SHORT_TIMEOUT)


def receive_exactly(sock: socket.socket, size: int) -> bytes:
    received = b""
    while len(received) < size:
        chunk = sock.recv(size - len(received))
        assert chunk, "connection closed early"
        received += chunk
    return received


def wait_until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_forwards_both_ways_and_counts_connections_and_bytes(echo_proxy):
    payload = os.urandom(300_000)
    with connect(echo_proxy) as sock:
        sock.settimeout(2)
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        sender.start()
        assert receive_exactly(sock, len(payload)) == payload
        sender.join()
        assert echo_proxy.connections == 1
        wait_until(lambda: echo_proxy.bytes_to_client == len(payload))
        assert echo_proxy.bytes_to_upstream == len(payload)
    wait_until(lambda: echo_proxy.connections == 0)


def test_half_closed_client_still_gets_the_whole_answer(echo_proxy):
    with connect(echo_proxy) as sock:
        sock.sendall(b"last words")
        sock.shutdown(socket.SHUT_WR)
        assert receive_exactly(sock, 10) == b"last words"
        assert sock.recv(1) == b""
    wait_until(lambda: echo_proxy.connections == 0)


def test_blackhole_holds_bytes_on_old_and_new_connections_until_restore(echo_proxy):
    with connect(echo_proxy) as old:
        old.sendall(b"before")
        assert receive_exactly(old, 6) == b"before"
        echo_proxy.blackhole()
        old.sendall(b"frozen")
        with connect(echo_proxy) as new:
            new.sendall(b"new")
            with pytest.raises(TimeoutError):
                old.recv(6)
            echo_proxy.restore()
            assert receive_exactly(old, 6) == b"frozen"
            assert receive_exactly(new, 3) == b"new"


def test_stop_leaves_no_thread_no_descriptor_and_a_closed_port():
    with socket.create_server(("127.0.0.1", 0)) as upstream:  # never accepts: the kernel's backlog holds them
        threads_before, fds_before = set(threading.enumerate()), open_fds()
        proxy = TCPProxy(*upstream.getsockname()).start()
        with connect(proxy) as sock:
            sock.sendall(b"pending")
            wait_until(lambda: proxy.connections == 1)
            proxy.stop()
            with pytest.raises(ConnectionResetError):
                sock.recv(1)
        proxy.stop()  # a second stop does nothing
        assert set(threading.enumerate()) == threads_before
        assert open_fds() - fds_before == set()
        with pytest.raises(ConnectionRefusedError):
            connect(proxy)
        with pytest.raises(RuntimeError):
            proxy.cut()


@pytest.mark.redis
def test_redis_commands_reach_the_real_server(redis_proxy, redis_key):
    client = redis_through(redis_proxy)
    assert client.ping()
    assert client.set(redis_key, b"through the proxy", ex=60)
    assert client.get(redis_key) == b"through the proxy"
    with redis_direct() as direct:
        assert direct.get(redis_key) == b"through the proxy"
    assert redis_proxy.bytes_to_upstream > 0
    assert redis_proxy.bytes_to_client > 0
    client.close()


@pytest.mark.redis
def test_cut_fails_the_next_command_and_a_reconnect_succeeds(redis_proxy):
    client = redis_through(redis_proxy)
    assert client.ping()
    redis_proxy.cut()
    assert redis_proxy.connections == 0
    with pytest.raises(redis.ConnectionError):
        client.ping()
    assert client.ping()
    assert redis_proxy.connections == 1
    client.close()


@pytest.mark.redis
def test_refuse_refuses_connections_until_restore_on_the_same_port(redis_proxy):
    port = redis_proxy.port
    client = redis_through(redis_proxy)
    assert client.ping()
    redis_proxy.refuse()
    with pytest.raises(ConnectionRefusedError):
        connect(redis_proxy)
    with pytest.raises(redis.ConnectionError):
        client.ping()
    with pytest.raises(redis.ConnectionError, match="refused"):
        client.ping()
    redis_proxy.restore()
    assert redis_proxy.port == port
    assert client.ping()
    client.close()


@pytest.mark.redis
def test_blackhole_times_a_command_out_and_restore_recovers(redis_proxy):
    client = redis_through(redis_proxy)
    assert client.ping()
    redis_proxy.blackhole()
    with pytest.raises(redis.TimeoutError):
        client.ping()
    redis_proxy.restore()
    assert client.ping()
    client.close()


@pytest.mark.redis
def test_delay_adds_to_each_round_trip_until_restore(redis_proxy):
    client = redis_through(redis_proxy, timeout=2)
    assert client.ping()
    redis_proxy.delay(0.2)
    started = time.perf_counter()
    assert client.ping()
    assert time.perf_counter() - started >= 0.2
    redis_proxy.restore()
    started = time.perf_counter()
    assert client.ping()
    assert time.perf_counter() - started < 0.2
    client.close()
