"""A health-check target for the benchmarks: answers every HTTP request with 200 and records who
probed what, so the harness can tell which node ran each check and when.

Usage: probe_target.py PORT LOGFILE
Each request appends "monotonic_seconds node path" to LOGFILE (the node is read from Roster's
User-Agent, "Roster Health Check (node NAME)"). asyncio keeps it cheap enough to answer 1,000
probes a second on a shared core; keep-alive is honoured so pooled connections are reused.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time

AGENT = re.compile(rb"user-agent:[^\r\n]*\(node ([^)\r\n]+)\)", re.IGNORECASE)
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


async def serve(port: int, log) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ", 2)[1].decode(errors="replace") if b" " in head else "?"
                match = AGENT.search(head)
                node = match.group(1).decode(errors="replace") if match else "-"
                log.write(f"{time.monotonic():.4f} {node} {path}\n")
                writer.write(RESPONSE)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    port, path = int(sys.argv[1]), sys.argv[2]
    with open(path, "a", buffering=1) as log:
        asyncio.run(serve(port, log))


if __name__ == "__main__":
    main()
