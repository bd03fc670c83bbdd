"""The yardstick: a bare aiohttp JSON handler on uvloop, one process, no middleware, no I/O.

With --floor it also carries what every request of the service pays for before its own work: the
service's JSON access logger (written to stdout, as the service writes it) and one middleware that
only passes the request on (aiohttp then adds one of its own), and it answers as the service
answers, with service/wire.py's OneWriteResponse. Its rate is the most any endpoint of the service
could reach; bench/run.py measures it like an endpoint.

With --one-write (and no --floor) it is the bare handler answering with OneWriteResponse instead of
aiohttp's web.Response, nothing else changed: bench/response_path.py compares the two.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson
import uvloop
from aiohttp import web


async def handler(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=orjson.dumps({"status": True}), content_type="application/json")


def one_write_handler() -> Any:
    """The same handler answering with the service's OneWriteResponse (imported here, once, so that
    the plain bare handler's process does not load the service)."""
    from service.wire import OneWriteResponse

    async def answer(request: web.Request) -> web.Response:
        await request.read()
        return OneWriteResponse(body=orjson.dumps({"status": True}), headers={"Content-Type": "application/json"})

    return answer


@web.middleware
async def passthrough(request: web.Request, handler: Any) -> web.StreamResponse:
    response: web.StreamResponse = await handler(request)
    return response


def main() -> None:
    floor = "--floor" in sys.argv[2:]
    one_write = floor or "--one-write" in sys.argv[2:]
    app = web.Application(middlewares=[passthrough] if floor else [])
    app.router.add_route("*", "/{tail:.*}", one_write_handler() if one_write else handler)
    logging_options: dict[str, Any] = {"access_log": None}
    if floor:
        from service.logs import JsonAccessLogger

        logging_options = {"access_log": logging.getLogger("aiohttp.access"), "access_log_class": JsonAccessLogger}
    web.run_app(
        app, host="127.0.0.1", port=int(sys.argv[1]), loop=uvloop.new_event_loop(), print=None, **logging_options
    )


if __name__ == "__main__":
    main()
