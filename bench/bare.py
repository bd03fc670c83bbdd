"""The yardstick: a bare aiohttp JSON handler on uvloop, one process, no middleware, no I/O."""

from __future__ import annotations

import sys

import orjson
import uvloop
from aiohttp import web


async def handler(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=orjson.dumps({"status": True}), content_type="application/json")


def main() -> None:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), loop=uvloop.new_event_loop(), access_log=None, print=None)


if __name__ == "__main__":
    main()
