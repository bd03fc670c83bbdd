"""The per-server auto-pipelining connection under the Redis store, on uvloop and asyncio's loop.

The store itself (routing, Sentinel, Cluster) is tested against real topologies in tests/topology/.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
import uvloop

from service.redis_pipe import (
    NotReplicated,
    PipelinedRedis,
    RedisReplyError,
    RedisUnavailable,
    Script,
    pack_command,
)
from service.redis_store import create_store


async def _exercise(url: str) -> None:
    pipe = PipelinedRedis(url, timeout=2)
    try:
        assert await pipe.execute("PING") == "PONG"
        await pipe.execute("DEL", "pipe-test")
        # 500 concurrent INCRs issued in the same loop iteration travel in one write and all count
        results = await asyncio.gather(*(pipe.execute("INCR", "pipe-test") for _ in range(500)))
        assert sorted(results) == list(range(1, 501))
        assert await pipe.execute_many([("INCRBY", "pipe-test", 5), ("GET", "pipe-test")]) == [505, "505"]
        script = Script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
        assert await pipe.evalsha(script, ["pipe-test"], [10]) == 515
        await pipe.execute("SCRIPT", "FLUSH")  # as after a Redis restart: NOSCRIPT, then EVAL
        assert await pipe.evalsha(script, ["pipe-test"], [1]) == 516
        with pytest.raises(RedisReplyError):
            await pipe.execute("INCR")  # wrong number of arguments: an error reply, not a hang
        assert await pipe.execute("GET", "pipe-test") == "516"  # replies stay matched after an error
        await pipe.execute("DEL", "pipe-test")
    finally:
        await pipe.close()


def test_pipelining_on_uvloop(backends):
    loop = uvloop.new_event_loop()
    try:
        loop.run_until_complete(_exercise(backends.redis_url))
    finally:
        loop.close()


async def test_pipelining_on_asyncio(backends, redis):
    await _exercise(backends.redis_url)


async def test_unreachable_server_fails_fast():
    pipe = PipelinedRedis("redis://127.0.0.1:1/0", timeout=0.5)
    with pytest.raises(RedisUnavailable):
        await pipe.execute("PING")


async def test_reconnects_after_the_server_drops_the_connection(backends, redis):
    """A Redis restart or a CLIENT KILL: the next command opens a new connection (after AUTH/SELECT)."""
    pipe = PipelinedRedis(backends.redis_url, timeout=2)
    try:
        await pipe.execute("SET", "pipe-reconnect", "1")
        await redis.client_kill_filter(_type="normal", skipme=True)
        for _ in range(50):  # the close reaches the client asynchronously
            if pipe._protocol is None:
                break
            await asyncio.sleep(0.02)
        assert await pipe.execute("GET", "pipe-reconnect") == "1"  # same database selected again
    finally:
        await pipe.close()


async def test_commands_sent_while_connecting_use_the_selected_database(backends, redis):
    """Nothing goes out before AUTH and SELECT are answered, however many callers arrive at once."""
    pipe = PipelinedRedis(backends.redis_url, timeout=2)
    try:
        await asyncio.gather(*(pipe.execute("SET", f"pipe-db-{n}", n) for n in range(50)))
        assert [await redis.get(f"pipe-db-{n}") for n in range(50)] == [str(n) for n in range(50)]
    finally:
        await pipe.close()


async def test_a_refused_handshake_leaves_no_half_open_connection(backends):
    """A wrong password (or any error reply to AUTH/SELECT) fails the command and is retried anew."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(backends.redis_url)
    if parts.scheme == "unix":
        bad = backends.redis_url + ("&" if "?" in backends.redis_url else "?") + "db=0"
        bad = bad.replace("unix://", "unix://:wrong-password@", 1)
    else:
        bad = urlunsplit(parts._replace(netloc=f":wrong-password@{parts.hostname}:{parts.port or 6379}"))
    pipe = PipelinedRedis(bad, timeout=2)
    for _ in range(2):  # the second attempt connects again rather than reusing a broken connection
        with pytest.raises(RedisUnavailable):
            await pipe.execute("PING")
    assert pipe._protocol is None


async def test_store_on_a_standalone_server(backends, redis):
    """The store's interface over the embedded server: scripts, one-slot batches, ping, ready."""
    store = create_store(backends.redis_url)
    await store.start()
    try:
        script = Script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
        results = await asyncio.gather(*(store.run_script(script, ["store:{a}"], [1]) for _ in range(100)))
        assert sorted(results) == list(range(1, 101))
        assert await store.batch([("GET", "store:{a}"), ("INCR", "store:{a}")]) == ["100", 101]
        assert await store.ping() is True
        assert await store.ready() is None
    finally:
        await store.close()


async def test_store_error_reply_is_raised_not_swallowed(backends, redis):
    store = create_store(backends.redis_url)
    await store.start()
    try:
        await redis.set("store:text", "not a number")
        with pytest.raises(RedisReplyError):
            await store.run_script(Script("return redis.call('INCR', KEYS[1])"), ["store:text"])
    finally:
        await store.close()


def test_commands_are_packed_as_resp_bulk_strings_whatever_their_arguments():
    def bulk(data: bytes) -> bytes:
        return b"$%d\r\n%s\r\n" % (len(data), data)

    args = ("SET", "ключ-{project-5}", b"\x00\xff\r\n", 42, -7, 1.5)
    expected = b"*6\r\n" + b"".join(
        bulk(part) for part in (b"SET", "ключ-{project-5}".encode(), b"\x00\xff\r\n", b"42", b"-7", b"1.5")
    )
    assert pack_command(*args) == expected
    assert pack_command(bytearray(b"ab"), memoryview(b"cd")) == b"*2\r\n" + bulk(b"ab") + bulk(b"cd")
    # a strided view is sent as the bytes it shows, not as its underlying buffer
    assert pack_command(memoryview(b"abcd")[::2], memoryview(b"xyz")[::-1]) == b"*2\r\n" + bulk(b"ac") + bulk(b"zyx")
    with pytest.raises(TypeError):
        pack_command("SET", "flag", True)


async def test_non_ascii_keys_and_binary_values_round_trip_through_the_server(backends):
    client = PipelinedRedis(backends.redis_url)
    try:
        await client.execute("SET", "gia-test:ключ", b"\x00\xffbinary")
        assert await client.execute("STRLEN", "gia-test:ключ") == 8  # the bytes as sent
        await client.execute("DEL", "gia-test:ключ")
    finally:
        await client.close()



RETURN_ONE = Script("return 1")


@contextlib.asynccontextmanager
async def durable_connection(url: str, timeout: float) -> AsyncIterator[PipelinedRedis]:
    """A connection for writes followed by WAIT, with RETURN_ONE cached on the server (no NOSCRIPT
    round trip in the test). The test server has no replica: every WAIT 1 answers 0 at its timeout."""
    durable = PipelinedRedis(url, timeout=timeout).durable_connection()
    try:
        await durable.evalsha(RETURN_ONE, ["k"])
        yield durable
    finally:
        await durable.close()


async def test_a_caller_giving_up_does_not_cancel_the_wait_it_shares_with_the_others(backends, redis):
    """Durable writes of one batch share one WAIT: each caller still gets its own answer."""
    async with durable_connection(backends.redis_url, timeout=5) as durable:
        gives_up = asyncio.ensure_future(durable.evalsha(RETURN_ONE, ["k"], (), wait=(1, 300)))
        stays = asyncio.ensure_future(durable.evalsha(RETURN_ONE, ["k"], (), wait=(1, 300)))
        await asyncio.sleep(0.05)  # both replies are in; both wait for the one WAIT (300 ms)
        gives_up.cancel()
        with pytest.raises(NotReplicated):  # its answer, not the other caller's cancellation
            await stays
        assert await durable.execute("ECHO", "x") == "x"  # and the replies are still in step


async def test_a_wait_longer_than_the_reply_timeout_is_answered_and_then_the_reply_timeout_applies_again(
    backends, redis
):
    """redis.wait_timeout may exceed the connection's reply timeout: the WAIT's own answer (no
    replica within it) is NotReplicated, not a connection aborted under a write that ran. The
    allowance lasts while the WAIT is unanswered: a server that then stops answering is given up
    on after the reply timeout alone."""
    async with durable_connection(backends.redis_url, timeout=0.3) as durable:
        with pytest.raises(NotReplicated):
            await durable.evalsha(RETURN_ONE, ["k"], (), wait=(1, 600))
        await durable.execute("CLIENT", "PAUSE", "1500", "ALL")  # the server stops answering for 1.5 s
        started = asyncio.get_running_loop().time()
        with pytest.raises(RedisUnavailable):
            await durable.execute("PING")
        assert asyncio.get_running_loop().time() - started < 0.3 + 0.6  # not the WAIT's allowance
