"""What a marshmallow load of a hot route's parameters costs, against the hand parse the route does.

The decision it backs: /allowed, /pre_receive and /post_receive read their parameters directly
(service/routes/shell.py) and their schemas in schemas/shell.py only describe them for the OpenAPI
document, although the house style loads parameters with a schema. The whole request of a hot route
has a budget of about 25-40 µs of worker CPU (bench/cpu_split.py); rerun this when marshmallow,
the schemas or the hand parse change:

    .venv/bin/python bench/schema_load.py [--rounds 7] [--calls 20000]

Method: CPU time (time.process_time) per call over `--calls` calls, each round running every
variant once in an order rotated from round to round; a row shows the median over the rounds and
the range, because this machine is shared and noisy. The payloads are what Gitaly and gitlab-shell
send (reference: client-contracts.md).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from schemas.shell import AllowedIn, PostReceiveIn, PreReceiveIn  # noqa: E402
from service.domain.actors import actor_from_params, parse_identifier, repository_from_params  # noqa: E402
from service.domain.post_receive import branch_names  # noqa: E402

ALLOWED = {
    "action": "git-receive-pack",
    "changes": "a" * 40 + " " + "b" * 40 + " refs/heads/main",
    "protocol": "ssh",
    "project": "/var/opt/gitlab/git-data/repositories/@hashed/aa/bb.git",
    "gl_repository": "project-5",
    "key_id": "12",
    "check_ip": "127.0.0.1",
    "relative_path": "@hashed/aa/bb.git",
    "env": '{"GIT_OBJECT_DIRECTORY_RELATIVE": "objects/incoming-x"}',
}
PRE_RECEIVE = {"gl_repository": "project-5"}
POST_RECEIVE = {
    "gl_repository": "project-5",
    "identifier": "user-7",
    "changes": "a" * 40 + " " + "b" * 40 + " refs/heads/main",
    "push_options": [],
}


def _hand_allowed() -> Any:
    return repository_from_params(ALLOWED), actor_from_params(ALLOWED)


def _hand_post_receive() -> Any:
    return (
        repository_from_params({"gl_repository": POST_RECEIVE["gl_repository"]}),
        parse_identifier(POST_RECEIVE["identifier"]),
        branch_names(POST_RECEIVE["changes"]),
    )


VARIANTS: dict[str, Callable[[], Any]] = {
    "allowed: AllowedIn().load": lambda schema=AllowedIn(): schema.load(ALLOWED),
    "allowed: hand parse": _hand_allowed,
    "pre_receive: PreReceiveIn().load": lambda schema=PreReceiveIn(): schema.load(PRE_RECEIVE),
    "pre_receive: hand parse": lambda: PRE_RECEIVE.get("gl_repository"),
    "post_receive: PostReceiveIn().load": lambda schema=PostReceiveIn(): schema.load(POST_RECEIVE),
    "post_receive: hand parse": _hand_post_receive,
}


def _per_call_us(function: Callable[[], Any], calls: int) -> float:
    for _ in range(200):  # warm-up
        function()
    gc.collect()
    gc.disable()
    try:
        started = time.process_time()
        for _ in range(calls):
            function()
        return (time.process_time() - started) / calls * 1e6
    finally:
        gc.enable()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=20000)
    args = parser.parse_args()
    names = list(VARIANTS)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_number in range(args.rounds):
        rotated = names[round_number % len(names) :] + names[: round_number % len(names)]
        for name in rotated:
            samples[name].append(_per_call_us(VARIANTS[name], args.calls))
    print(f"CPU µs per call, median (min-max) of {args.rounds} rounds of {args.calls} calls")
    for name in names:
        values = samples[name]
        print(f"{name:38} {statistics.median(values):7.2f}  ({min(values):.2f}-{max(values):.2f})")


if __name__ == "__main__":
    main()
