"""A TCP proxy that delays every chunk by a fixed time in each direction, preserving order.

This machine has neither the ``sch_netem`` kernel module (``tc qdisc ... netem delay``) nor
iptables, so a slow network is made in user space: each chunk read from one side is written to
the other ``delay`` seconds after it was read. Chunks queue behind each other, so order holds
and bandwidth is not limited: only latency is added, as netem's ``delay`` does.

Run as its own process (the test's GIL stays out of the timing)::

    python -m tests.support.delay_proxy LISTEN_PORT UPSTREAM_HOST UPSTREAM_PORT DELAY_SECONDS

It prints ``ready`` once it listens.
"""

from __future__ import annotations

import asyncio
import socket
import sys

CHUNK_BYTES = 65536


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def feed() -> None:
        while True:
            try:
                data = await reader.read(CHUNK_BYTES)
            except ConnectionError:
                data = b""
            queue.put_nowait((loop.time() + delay, data))
            if not data:
                return

    async def deliver() -> None:
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                writer.close()
                return
            writer.write(data)
            try:
                await writer.drain()
            except ConnectionError:
                return

    await asyncio.gather(feed(), deliver())


def _no_delay(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


async def _serve(listen_port: int, host: str, port: int, delay: float) -> None:
    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter):
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(host, port)
        except OSError:
            client_writer.close()
            return
        _no_delay(client_writer)
        _no_delay(upstream_writer)
        await asyncio.gather(
            _pump(client_reader, upstream_writer, delay),
            _pump(upstream_reader, client_writer, delay),
            return_exceptions=True,
        )

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str]) -> None:
    listen_port, host, port, delay = int(argv[0]), argv[1], int(argv[2]), float(argv[3])
    asyncio.run(_serve(listen_port, host, port, delay))


if __name__ == "__main__":
    main(sys.argv[1:])
