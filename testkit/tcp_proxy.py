"""A TCP proxy with fault switches, so tests can break one connection path without touching shared servers.

The fault tests must cut the app off from PostgreSQL, Redis or a fake HTTP provider while the machine's
PostgreSQL and Redis keep serving everybody else. Pointing the app at a `TCPProxy` makes the failure local:
`cut()` resets the open connections, `refuse()` closes the listening port so connect() gets ECONNREFUSED,
`blackhole()` holds connections open and forwards nothing (a frozen server: clients time out), `delay()` adds
latency, and `restore()` undoes all of them, listening again on the same port (SO_REUSEADDR).

One selector loop thread owns every socket. A switch hands that thread a closure and waits until it has run, so
the fault is in force when the call returns and no socket is ever touched by two threads. While the proxy is not
reading, bytes wait in the kernel's buffers, so a blackholed connection resumes where it froze.
"""

import contextlib
import errno
import selectors
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from types import TracebackType
from typing import Any, Self

CHUNK_SIZE = 65536
# Per direction: a side whose peer does not drain stops being read, instead of filling the proxy's memory.
MAX_BUFFERED = 4 * CHUNK_SIZE
# SO_LINGER on with a zero timeout: close() sends RST, which is what a cut looks like to both ends.
_RESET_ON_CLOSE = struct.pack("ii", 1, 0)


class _Flow:
    """One direction of a proxied connection: chunks read from `source`, stamped with their read time,
    waiting to be written to `sink`."""

    def __init__(self, source: socket.socket, sink: socket.socket, delayed: bool):
        self.source = source
        self.sink = sink
        self.delayed = delayed
        self.chunks: deque[tuple[float, bytes]] = deque()
        self.buffered = 0
        self.source_done = False
        self.sink_shut = False


class _Link:
    """A client connection and the upstream connection opened for it."""

    def __init__(self, client: socket.socket, upstream: socket.socket, connecting: bool):
        self.client = client
        self.upstream = upstream
        self.connecting = connecting
        self.to_upstream = _Flow(client, upstream, delayed=False)
        self.to_client = _Flow(upstream, client, delayed=True)
        self.interest: dict[socket.socket, int] = {client: 0, upstream: 0}

    @property
    def flows(self) -> tuple[_Flow, _Flow]:
        return self.to_upstream, self.to_client


class TCPProxy:
    """Forwards connections from `listen_host:listen_port` to `upstream_host:upstream_port`, with fault switches.

    `listen_port=0` picks a free port; `port` and `address` tell which after `start()`. Every switch is
    thread-safe, in force when it returns, and raises RuntimeError if the proxy is not running. The counters
    `bytes_to_upstream` and `bytes_to_client` count bytes written to the far side, and `connections` counts live
    client connections.
    """

    def __init__(self, upstream_host: str, upstream_port: int, listen_host: str = "127.0.0.1", listen_port: int = 0):
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.listen_host = listen_host
        self.bytes_to_upstream = 0
        self.bytes_to_client = 0
        self._port = listen_port
        self._blackholed = False
        self._delay = 0.0
        self._links: set[_Link] = set()
        self._listener: socket.socket | None = None
        self._lock = threading.Lock()
        self._commands: list[tuple[Callable[..., None], tuple[Any, ...], Future[None]]] = []
        self._running = False
        self._stopping = False
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._port

    @property
    def address(self) -> tuple[str, int]:
        return self.listen_host, self._port

    @property
    def connections(self) -> int:
        return len(self._links)

    def start(self) -> Self:
        """Resolve the upstream, listen, and start the loop thread. A proxy starts once."""
        if self._thread is not None:
            raise RuntimeError("a TCPProxy starts only once")
        family, _, _, _, self._upstream_address = socket.getaddrinfo(
            self.upstream_host, self.upstream_port, type=socket.SOCK_STREAM
        )[0]
        self._upstream_family = family
        self._listen_family = socket.getaddrinfo(self.listen_host, self._port, type=socket.SOCK_STREAM)[0][0]
        self._selector = selectors.DefaultSelector()
        self._open_listener()
        # The switches wake the loop thread by writing a byte here.
        self._wake_reader, self._wake_writer = socket.socketpair()
        for sock in (self._wake_reader, self._wake_writer):
            sock.setblocking(False)
        self._selector.register(self._wake_reader, selectors.EVENT_READ, self._run_commands)
        self._running = True
        self._thread = threading.Thread(target=self._serve, name=f"tcp-proxy:{self._port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Reset every connection, close every socket and end the loop thread; calling it again does nothing."""
        if self._thread is None:
            return
        with contextlib.suppress(RuntimeError):  # already stopped
            self._call(self._request_stop)
        self._thread.join()

    def __enter__(self) -> Self:
        return self if self._thread is not None else self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def cut(self) -> None:
        """Reset every open connection, both ends; new connections are still accepted."""
        self._call(self._cut_all)

    def refuse(self) -> None:
        """Close the listening socket (connect() gets ECONNREFUSED) and reset every open connection."""
        self._call(self._refuse)

    def accept_again(self) -> None:
        """Listen again on the same port after `refuse()`; OSError if another socket took the port meanwhile."""
        self._call(self._listen_if_closed)

    def blackhole(self) -> None:
        """Accept and hold connections but forward nothing, either way, on new and existing connections."""
        self._call(self._set_blackholed, True)

    def delay(self, seconds: float) -> None:
        """Hold each chunk from upstream `seconds` before passing it to the client (so one round trip gains
        `seconds`), including chunks already waiting."""
        if seconds < 0:
            raise ValueError("delay must be zero or more seconds")
        self._call(self._set_delay, seconds)

    def restore(self) -> None:
        """Forward normally again: listening on the same port, no blackhole, no delay."""
        self._call(self._restore)

    def _call(self, action: Callable[..., None], *args: Any) -> None:
        future: Future[None] = Future()
        with self._lock:
            if not self._running:
                raise RuntimeError("the proxy is not running")
            self._commands.append((action, args, future))
            # A full wake-up socket already holds unread bytes: the loop wakes anyway.
            with contextlib.suppress(BlockingIOError):
                self._wake_writer.send(b"\0")
        future.result()

    def _run_commands(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while self._wake_reader.recv(4096):
                pass
        with self._lock:
            commands, self._commands = self._commands, []
        for action, args, future in commands:
            try:
                action(*args)
            except Exception as error:
                future.set_exception(error)
            else:
                future.set_result(None)

    def _request_stop(self) -> None:
        self._stopping = True

    def _set_blackholed(self, blackholed: bool) -> None:
        self._blackholed = blackholed

    def _set_delay(self, seconds: float) -> None:
        self._delay = seconds

    def _restore(self) -> None:
        self._blackholed = False
        self._delay = 0.0
        self._listen_if_closed()

    def _refuse(self) -> None:
        if self._listener is not None:
            self._selector.unregister(self._listener)
            self._listener.close()
            self._listener = None
        self._cut_all()

    def _cut_all(self) -> None:
        for link in list(self._links):
            self._close(link, reset=True)

    def _listen_if_closed(self) -> None:
        if self._listener is None:
            self._open_listener()

    def _open_listener(self) -> None:
        listener = socket.socket(self._listen_family, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self.listen_host, self._port))
            listener.listen(128)
            listener.setblocking(False)
        except OSError:
            listener.close()
            raise
        self._port = listener.getsockname()[1]
        self._listener = listener
        self._selector.register(listener, selectors.EVENT_READ, self._accept)

    def _serve(self) -> None:
        try:
            while not self._stopping:
                for key, events in self._selector.select(self._select_timeout()):
                    if isinstance(key.data, _Link):
                        self._handle_event(key.data, key.fileobj, events)
                    else:
                        key.data()
                for link in list(self._links):
                    self._forward(link)
                for link in self._links:
                    self._update_interest(link)
        finally:
            self._shut_down()

    def _shut_down(self) -> None:
        with self._lock:
            self._running = False
            commands, self._commands = self._commands, []
        for _, _, future in commands:
            future.set_exception(RuntimeError("the proxy has stopped"))
        self._cut_all()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self._selector.close()
        self._wake_reader.close()
        self._wake_writer.close()

    def _select_timeout(self) -> float | None:
        """Seconds until the next delayed chunk falls due; None (wait for sockets only) when none is waiting."""
        if self._blackholed or not self._delay:
            return None
        now = time.monotonic()
        waits = [self._due(link.to_client) - now for link in self._links if link.to_client.chunks]
        return min((wait for wait in waits if wait > 0), default=None)

    def _accept(self) -> None:
        if self._listener is None:
            return
        try:
            client, _ = self._listener.accept()
        except (BlockingIOError, ConnectionAbortedError):
            return
        upstream = socket.socket(self._upstream_family, socket.SOCK_STREAM)
        for sock in (client, upstream):
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        outcome = upstream.connect_ex(self._upstream_address)
        link = _Link(client, upstream, connecting=outcome == errno.EINPROGRESS)
        self._links.add(link)
        if outcome not in (0, errno.EINPROGRESS):
            self._close(link, reset=True)

    def _handle_event(self, link: _Link, sock: Any, events: int) -> None:
        if link not in self._links:
            return  # closed earlier in this round of events
        if sock is link.upstream and link.connecting and events & selectors.EVENT_WRITE:
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                self._close(link, reset=True)
                return
            link.connecting = False
        if events & selectors.EVENT_READ:
            flow = link.to_upstream if sock is link.client else link.to_client
            if self._wants_read(link, flow):
                self._receive(link, flow)

    def _receive(self, link: _Link, flow: _Flow) -> None:
        try:
            data = flow.source.recv(CHUNK_SIZE)
        except BlockingIOError:
            return
        except OSError:
            self._close(link, reset=True)
            return
        if data:
            flow.chunks.append((time.monotonic(), data))
            flow.buffered += len(data)
        else:
            flow.source_done = True

    def _forward(self, link: _Link) -> None:
        """Write every chunk that is due, pass on a half-close once its flow is drained, close a finished link."""
        if self._blackholed or link.connecting:
            return
        for flow in link.flows:
            try:
                self._drain(flow)
                if flow.source_done and not flow.chunks and not flow.sink_shut:
                    flow.sink_shut = True
                    flow.sink.shutdown(socket.SHUT_WR)
            except BlockingIOError:
                continue
            except OSError:
                self._close(link, reset=True)
                return
        if link.to_upstream.sink_shut and link.to_client.sink_shut:
            self._close(link, reset=False)

    def _drain(self, flow: _Flow) -> None:
        while flow.chunks and self._due(flow) <= time.monotonic():
            read_at, data = flow.chunks[0]
            sent = flow.sink.send(data)
            flow.buffered -= sent
            if flow.delayed:
                self.bytes_to_client += sent
            else:
                self.bytes_to_upstream += sent
            if sent < len(data):
                flow.chunks[0] = (read_at, data[sent:])
                return
            flow.chunks.popleft()

    def _due(self, flow: _Flow) -> float:
        return flow.chunks[0][0] + (self._delay if flow.delayed else 0.0)

    def _wants_read(self, link: _Link, flow: _Flow) -> bool:
        if self._blackholed or flow.source_done or flow.buffered >= MAX_BUFFERED:
            return False
        return flow.source is link.client or not link.connecting

    def _wants_write(self, link: _Link, flow: _Flow) -> bool:
        if self._blackholed or link.connecting or not flow.chunks:
            return False
        return self._due(flow) <= time.monotonic()

    def _update_interest(self, link: _Link) -> None:
        for sock in (link.client, link.upstream):
            events = 0
            for flow in link.flows:
                if flow.source is sock and self._wants_read(link, flow):
                    events |= selectors.EVENT_READ
                if flow.sink is sock and self._wants_write(link, flow):
                    events |= selectors.EVENT_WRITE
            if sock is link.upstream and link.connecting:
                events |= selectors.EVENT_WRITE
            current = link.interest[sock]
            if events == current:
                continue
            if not current:
                self._selector.register(sock, events, link)
            elif not events:
                self._selector.unregister(sock)
            else:
                self._selector.modify(sock, events, link)
            link.interest[sock] = events

    def _close(self, link: _Link, reset: bool) -> None:
        self._links.discard(link)
        for sock in (link.client, link.upstream):
            if link.interest[sock]:
                self._selector.unregister(sock)
            if reset:
                # Fails on a socket never connected or already reset by its peer, where close() alone is enough.
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET_ON_CLOSE)
            sock.close()
