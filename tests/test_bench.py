"""bench/run.py's arithmetic: what a row reports from the rounds, and when it refuses a verdict.

The load itself (wrk, the servers) is exercised by `python3 dev.py bench --smoke`, not here.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_run"] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


bench = _load()


def rounds(*pairs: tuple[str, str, float]) -> list:  # type: ignore[type-arg]
    return [bench.Round("unix", target, endpoint, "saturated", 3, rps, 1.0, 2.0, 0, float(i))
            for i, (target, endpoint, rps) in enumerate(pairs)]


def test_each_service_round_is_divided_by_the_mean_of_its_two_bare_neighbours() -> None:
    summary = bench.summarise(rounds(
        ("bare", "a", 10_000), ("service", "a", 6_000), ("bare", "b", 14_000), ("service", "b", 3_000),
        ("bare", "a", 10_000), ("service", "a", 4_800), ("bare", "-", 14_000),
    ))
    a = summary[("service", "a")]
    assert a.ratios == pytest.approx([0.5, 0.4])  # 6000 / 12000, 4800 / 12000
    assert a.bare == [10_000, 14_000, 10_000, 14_000]
    assert summary[("service", "b")].ratios == pytest.approx([0.25])
    assert a.ratio == pytest.approx(0.45)


def test_warm_up_and_paced_rounds_are_not_ratios() -> None:
    rs = rounds(("bare", "a", 10_000), ("service", "a", 5_000), ("bare", "-", 10_000))
    rs.insert(1, bench.Round("unix", "service", "a", "warmup", 1, 99_999, 1.0, 2.0, 0, 0.5))
    rs.append(bench.Round("unix", "service", "a", "paced", 3, 1, 1.0, 2.0, 0, 9.0))
    assert bench.summarise(rs)[("service", "a")].ratios == [0.5]


def test_a_row_refuses_a_verdict_when_its_bare_rounds_spread_beyond_the_bound() -> None:
    options = bench.Options(2, 3, 0, 3, 64, 1.25, ["authorized_keys"], None)
    quiet = rounds(("bare", "authorized_keys", 10_000), ("service", "authorized_keys", 9_000),
                   ("bare", "authorized_keys", 11_000), ("service", "authorized_keys", 9_000), ("bare", "-", 10_500))
    noisy = rounds(("bare", "authorized_keys", 10_000), ("service", "authorized_keys", 9_000),
                   ("bare", "authorized_keys", 13_000), ("service", "authorized_keys", 9_000), ("bare", "-", 10_500))
    for rs in (quiet, noisy):
        rs.append(bench.Round("unix", "service", "authorized_keys", "paced", 3, 6_000, 1.0, 4.0, 0, 99.0, 6_300))
    lines, missed = bench.table("unix", "t", quiet, options, verdicts=True)
    row = next(line for line in lines if line.startswith("authorized_keys"))
    assert row.endswith("  ok") and not missed
    lines, missed = bench.table("unix", "t", noisy, options, verdicts=True)
    row = next(line for line in lines if line.startswith("authorized_keys"))
    assert "noisy: no verdict" in row and "ok" not in row.split("noisy")[0] and not missed


def test_a_ratio_or_p99_below_target_is_a_miss() -> None:
    options = bench.Options(1, 3, 1, 3, 64, 1.25, ["authorized_keys"], None)
    rs = rounds(("bare", "authorized_keys", 10_000), ("service", "authorized_keys", 7_000), ("bare", "-", 10_000))
    rs.append(bench.Round("unix", "service", "authorized_keys", "paced", 3, 4_900, 1.0, 40.0, 0, 9.0, 4_900))
    lines, missed = bench.table("unix", "t", rs, options, verdicts=True)
    assert missed
    assert "MISS (ratio, p99)" in next(line for line in lines if line.startswith("authorized_keys"))


def test_without_paced_rounds_a_row_misses_on_its_ratio_but_is_never_ok() -> None:
    options = bench.Options(1, 3, 0, 3, 64, 1.25, ["authorized_keys", "pre_receive"], None)
    rs = rounds(("bare", "authorized_keys", 10_000), ("service", "authorized_keys", 9_000), ("bare", "pre_receive", 10_000),
                ("service", "pre_receive", 5_000), ("bare", "-", 10_000))
    lines, missed = bench.table("unix", "t", rs, options, verdicts=True)
    assert missed
    assert next(line for line in lines if line.startswith("pre_receive")).endswith("MISS (ratio)")
    assert next(line for line in lines if line.startswith("authorized_keys")).endswith(
        "ratio ok, p99 not measured: no verdict"
    )
    assert bench.any_refused(lines)


def test_the_two_floors_are_reported_without_a_verdict_however_low() -> None:
    floors = [bench.FLOOR, bench.SERVICE_FLOOR]
    options = bench.Options(1, 3, 1, 3, 64, 1.25, floors, None)
    rs = []
    for endpoint in floors:
        rs += rounds(("bare", endpoint, 10_000), ("service", endpoint, 1_000), ("bare", "-", 10_000))
        rs.append(bench.Round("unix", "service", endpoint, "paced", 3, 700, 1.0, 40.0, 0, 9.0, 700))
    lines, missed = bench.table("unix", "t", rs, options, verdicts=True)
    assert not missed
    service_row = next(line for line in lines if line.startswith(bench.SERVICE_FLOOR))
    assert "0.10" in service_row and "the service's common path" in service_row and "MISS" not in service_row


def test_scaling_pairs_the_two_worker_round_with_the_one_worker_round_of_the_same_pass() -> None:
    rs = rounds(("bare", "a", 10), ("service", "a", 100), ("bare", "a", 10), ("service-2w", "a", 160),
                ("bare", "a", 10), ("service", "a", 80), ("bare", "a", 10), ("service-2w", "a", 160), ("bare", "-", 10))
    assert bench.scaling(rs)["a"] == pytest.approx([1.6, 2.0])


def test_spread_of_a_zero_rate_is_infinite() -> None:
    assert bench.spread([10.0, 12.5]) == pytest.approx(1.25)
    assert bench.spread([0.0, 5.0]) == math.inf


def test_wrk_output_is_parsed_with_its_units_and_errors() -> None:
    out = """Running 3s test @ http://127.0.0.1:1/
  1 threads and 64 connections
  Latency Distribution
     50%  812.00us
     75%    1.20ms
     90%    2.00ms
     99%    1.02s
  30000 requests in 3.00s, 4.00MB read
  Socket errors: connect 0, read 1, write 0, timeout 2
  Non-2xx or 3xx responses: 4
Requests/sec:  10000.50
"""
    assert bench.parse_wrk(out) == (10000.5, pytest.approx(0.812), 1020.0, 7)


def test_profile_samples_are_attributed_to_the_innermost_library_they_run_in(tmp_path: Path) -> None:
    worker = ("run", "/venv/lib/python3.11/site-packages/aiohttp/worker.py")
    middleware = ("request_middleware", "/work/main/service/middleware.py")
    handler = ("allowed", "/work/main/service/routes/shell.py")
    asyncpg = ("fetchrow", "/venv/lib/python3.11/site-packages/asyncpg/connection.py")
    future = ("create_future", "/usr/lib/python3.11/asyncio/base_events.py")
    jwt = ("decode", "/venv/lib/python3.11/site-packages/jwt/api_jwt.py")
    assert bench.classify([worker, middleware, handler, asyncpg, future]) == "database (asyncpg, psycopg/procrastinate jobs)"
    assert bench.classify([worker, middleware, jwt]) == "auth/JWT"
    assert bench.classify([worker, middleware, handler]) == "handlers/domain (own code)"
    assert bench.classify([worker, middleware]) == "middleware (own code)"
    # the frames that pass the request on do not claim the handler's time, nor the Redis call's
    shell_jwt = ("shell_jwt", "/work/main/service/auth.py")
    metered = ("MeteredReferenceCounter.increase", "/work/main/service/metrics.py")
    redis = ("evalsha", "/work/main/service/redis_pipe.py")
    assert bench.classify([worker, middleware, handler]) == "handlers/domain (own code)"
    assert bench.classify([worker, middleware, shell_jwt]) == "auth/JWT"
    assert bench.classify([worker, middleware, handler, metered]) == "handlers/domain (own code)"
    assert bench.classify([worker, middleware, handler, metered, redis]) == "Redis"
    assert bench.classify([worker]) == "event loop (uvloop/asyncio)"
    frames = [{"name": n, "file": f} for n, f in (worker, middleware, handler, asyncpg)]
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"shared": {"frames": frames},
                                "profiles": [{"samples": [[0, 1, 2, 3], [0, 1, 2], [0, 1, 2, 3]], "weights": [1, 1, 2]}]}))
    categories, leaves, total = bench.summarise_profile(path)
    assert total == 4
    assert categories == {"database (asyncpg, psycopg/procrastinate jobs)": 3, "handlers/domain (own code)": 1}
    assert leaves["fetchrow (connection.py)"] == 3


def test_paced_rounds_that_missed_their_rate_give_no_p99_verdict() -> None:
    options = bench.Options(1, 3, 1, 3, 64, 1.25, ["authorized_keys"], None)
    rs = rounds(("bare", "authorized_keys", 10_000), ("service", "authorized_keys", 9_000), ("bare", "-", 10_000))
    rs.append(bench.Round("unix", "service", "authorized_keys", "paced", 3, 9_000, 1.0, 2.0, 0, 9.0, 6_300))
    lines, missed = bench.table("unix", "t", rs, options, verdicts=True)
    row = next(line for line in lines if line.startswith("authorized_keys"))
    assert "noisy: no verdict (paced rounds reached 143% of the offered rate)" in row and not missed


def test_a_row_whose_bare_rate_is_low_against_the_machines_quiet_rate_gives_no_verdict() -> None:
    # steady bare rounds (spread 1.02) on a machine slowed for the whole run: the ratio is flattered
    rs = rounds(("bare", "authorized_keys", 10_000), ("service", "authorized_keys", 8_500),
                ("bare", "authorized_keys", 10_200), ("service", "authorized_keys", 8_500), ("bare", "-", 10_100))
    rs.append(bench.Round("unix", "service", "authorized_keys", "paced", 3, 6_000, 1.0, 4.0, 0, 99.0, 6_000))
    options = bench.Options(2, 3, 1, 3, 64, 1.25, ["authorized_keys"], None)
    for quiet_rate, verdict in ((24_000, "slow machine: no verdict"), (11_000, "ok")):
        options.bare_reference = bench.BareReference(quiet_rate, "--bare-reference")
        lines, missed = bench.table("unix", "t", rs, options, verdicts=True)
        row = next(line for line in lines if line.startswith("authorized_keys"))
        assert verdict in row and not missed
    assert "(bare 10,100 req/s < 85% of the reference 24,000)" in bench.Options(
        2, 3, 1, 3, 64, 1.25, [], None, bare_reference=bench.BareReference(24_000, "x")
    ).verdict_refused([10_000, 10_200])


def test_the_scaling_table_refuses_a_verdict_on_a_slow_machine_too() -> None:
    rs = rounds(("bare", "authorized_keys", 10_000), ("service", "authorized_keys", 8_000),
                ("bare", "authorized_keys", 10_000), ("service-2w", "authorized_keys", 16_000), ("bare", "-", 10_000))
    options = bench.Options(1, 3, 0, 3, 64, 1.25, ["authorized_keys"], None)
    assert next(line for line in bench.scaling_table(rs, options)[0] if line.startswith("authorized_keys")).endswith("ok")
    options.bare_reference = bench.BareReference(24_000, "--bare-reference")
    lines, missed = bench.scaling_table(rs, options)
    assert "slow machine: no verdict" in next(line for line in lines if line.startswith("authorized_keys"))
    assert not missed


def test_the_bare_reference_is_the_best_steady_bare_median_of_an_earlier_run_on_the_same_machine(
    tmp_path: Path,
) -> None:
    machine = {"nproc": 2, "cpu": "AMD EPYC"}

    def run(name: str, bare: list[float], **fields: object) -> None:
        saturated = [{"target": "bare", "kind": "saturated", "rps": rps} for rps in bare]
        paced = [{"target": "bare", "kind": "paced", "rps": 99_999.0}]  # not a saturated round
        service = [{"target": "service", "kind": "saturated", "rps": 88_888.0}]
        raw = {"machine": machine, "smoke": False, "options": {"connections": 64},
               "topologies": {"unix": {"rounds": saturated + paced + service}}}
        (tmp_path / f"bench-{name}.json").write_text(json.dumps({**raw, **fields}))

    def reference() -> object:
        return bench.bare_reference(tmp_path, machine, 64, 1.25)

    assert reference() is None
    run("1", [20_000, 24_000, 23_000, 23_500, 22_000])
    assert reference() == bench.BareReference(23_000, "bench-1.json")
    run("2", [10_000, 11_000, 12_000, 11_500, 11_000])  # a slow run does not lower it
    run("3", [30_000] * 5, machine={"nproc": 4, "cpu": "AMD EPYC"})  # another machine
    run("4", [40_000] * 5, smoke=True)  # 1 s rounds that check the harness
    run("5", [50_000] * 4)  # too few rounds to take a median from
    run("6", [60_000, 30_000, 60_000, 60_000, 60_000])  # spread 2.0: a noisy run
    run("7", [70_000] * 5, options={"connections": 16})  # another load
    (tmp_path / "bench-8.json").write_text('{"machine": {"nproc": 2')  # a run cut short
    (tmp_path / "bench-9.json").write_text("[1, 2]")  # not this script's
    assert reference() == bench.BareReference(23_000, "bench-1.json")
    # a run that was given the quiet rate passes it on; a rate given now comes first
    run("10", [9_000] * 5, bare_reference={"rps": 24_570.0, "source": "--bare-reference"})
    assert reference() == bench.BareReference(24_570, "the --bare-reference of bench-10.json")
    assert bench.bare_reference(tmp_path, machine, 64, 1.25, given=30_000.0) == bench.BareReference(
        30_000, "--bare-reference"
    )


def test_a_refused_verdict_makes_the_run_exit_3_and_a_reference_survives_the_workers2_copy() -> None:
    reference = bench.BareReference(24_000, "--bare-reference")
    options = bench.Options(1, 3, 0, 3, 64, 1.25, list(bench.ENDPOINTS), None, bare_reference=reference)
    scaled = bench.scaling_options(options)
    assert scaled.endpoints == list(bench.SCALING_ENDPOINTS) and scaled.bare_reference == reference
    rs = rounds(("bare", "authorized_keys", 10_000), ("service", "authorized_keys", 8_000),
                ("bare", "authorized_keys", 10_000), ("service-2w", "authorized_keys", 16_000), ("bare", "-", 10_000))
    assert bench.any_refused(bench.scaling_table(rs, scaled)[0])
    assert not bench.any_refused(bench.scaling_table(rs, bench.scaling_options(
        bench.Options(1, 3, 0, 3, 64, 1.25, list(bench.ENDPOINTS), None)))[0])


@pytest.mark.parametrize("argv", [["--bare-reference", "0"], ["--bare-reference", "-3"], ["--bare-reference", "nan"],
                                  ["--slow-bound", "0"], ["--slow-bound", "1.5"]])
def test_a_reference_or_bound_that_could_never_refuse_or_always_would_is_an_error(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        bench.parse_args(argv)


def test_every_column_stays_apart_at_the_rates_of_a_fast_machine() -> None:
    # A 39,000 req/s machine printed "0.8019,788/19,817": the target ran into the paced rates.
    options = bench.Options(1, 3, 1, 3, 64, 1.25, ["authorized_keys"], None)
    rs = rounds(("bare", "authorized_keys", 399_000), ("service", "authorized_keys", 288_310),
                ("bare", "-", 399_000))
    rs.append(bench.Round("unix", "service", "authorized_keys", "paced", 3, 199_788, 0.6, 1.3, 0, 9.0, 199_817))
    lines, _ = bench.table("unix", "t", rs, options, verdicts=True)
    head = next(line for line in lines if line.startswith("endpoint"))
    row = next(line for line in lines if line.startswith("authorized_keys"))
    assert row.split()[:9] == ["authorized_keys", "399,000", "(399,000-399,000)", "288,310", "0.72", "(0.72-0.72)",
                               "0.80", "199,788/199,817", "0.6"]
    assert head.index("paced req/s") + len("paced req/s") == row.index("199,817") + len("199,817")


def _load_instructions() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_instructions", ROOT / "bench" / "instructions.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_instruction_counts_are_callgrinds_totals_by_event_and_shown_per_request() -> None:
    instructions = _load_instructions()
    dumped = "version: 1\ncmd: python bare.py\nevents: Ir I1mr D1mr D1mw Bcm Bim\nfn=main\n5 10\nsummary: 2000 10 5 3 7 2\n"
    counted = instructions.events(dumped)
    assert counted == {"Ir": 2000, "I1mr": 10, "D1mr": 5, "D1mw": 3, "Bcm": 7, "Bim": 2}
    assert instructions.events(dumped.replace("summary:", "totals:")) == counted  # older callgrinds
    cells = instructions.row("service_floor", counted, 1000.0).split()
    # D1 misses are reads and writes; mispredictions conditional and indirect; Ir against the bare one
    assert cells == ["service_floor", "2,000", "10", "8", "9", "2.00"]
    with pytest.raises(ValueError):
        instructions.events("not a dump")
