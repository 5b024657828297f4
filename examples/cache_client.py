"""A Redis cache that keeps answering while Redis is down, and catches up after.

Runs anywhere: with no Redis, the client answers from its in-memory fallback and
says so in its health check. If ``redis-server`` is installed, the example then
starts one (loopback, random port, no persistence) and shows the writes made
during the outage reaching Redis.

    python examples/cache_client.py
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time

from buttress import get_redis_client

logging.getLogger("buttress").setLevel(logging.ERROR)  # keep the output to the story


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_redis(port: int, directory: str) -> subprocess.Popen[bytes] | None:
    executable = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None)
    if executable is None:
        return None
    server = subprocess.Popen(
        [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", directory], stdout=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return server
        except OSError:
            time.sleep(0.02)
    server.kill()
    return None


async def main() -> None:
    port = free_port()  # nothing listens here yet: Redis is "down"
    client = get_redis_client(f"redis://127.0.0.1:{port}/0", recovery_timeout=0.5,
                              socket_timeout=0.5)

    await client.set("greeting", "hello", ttl=3600)
    await client.hset("user:1", "name", "Ada")
    print("served from memory:", await client.get("greeting"),
          await client.hget("user:1", "name"))
    health = await client.health_check()
    print(f"health: {health['status']} (breaker {health['circuit_breaker']}, "
          f"{health['fallback']['pending_writes']} writes waiting for Redis)")

    with tempfile.TemporaryDirectory() as directory:
        server = start_redis(port, directory)
        if server is None:
            print("redis-server is not installed: the recovery part is skipped")
            return
        try:
            await asyncio.sleep(0.6)  # the breaker's recovery timeout
            print("after recovery:", await client.get("greeting"))
            health = await client.health_check()
            print(f"health: {health['status']} (breaker {health['circuit_breaker']}, "
                  f"{health['fallback']['pending_writes']} writes waiting for Redis)")
            import redis  # only to look inside Redis directly

            direct = redis.Redis(port=port, decode_responses=True)
            print("Redis holds:", direct.get("greeting"), direct.hgetall("user:1"),
                  f"ttl {direct.ttl('greeting')}s")
            direct.close()
            await client.aclose()
        finally:
            server.kill()
            server.wait()


if __name__ == "__main__":
    asyncio.run(main())
