"""Render a benchmark run (the dict ``run.py`` collects) as Markdown."""

from __future__ import annotations

from typing import Any

from entrypoints.settings import Settings

TARGET_NAMES = {
    "ceiling": "direct upstream (ceiling)",
    "floor": "minimal app (floor)",
    "floor-inline": "minimal app on Parley's SQLite driver",
}
WORKLOADS = {
    "chat": "chat",
    "stream": "chat, streamed",
    "list": "conversation list",
    "history": "history, 200 messages",
}


def _f(value: float | None, digits: int = 2) -> str:
    if value is None or value != value:
        return "-"
    return f"{value:.{digits}f}"


def _n(value: float | None) -> str:
    if value is None or value != value:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not b:
        return None
    return a / b


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**met**" if ok else "**missed**")


def render(data: dict[str, Any]) -> str:
    cfg = data["config"]
    m = data["matrix"]
    machine = data["machine"]
    out: list[str] = []
    backend = cfg["backend"]
    out.append(
        f"# Parley benchmark — {data['stamp']} ({backend}{', quick' if cfg['quick'] else ''})"
    )
    out.append("")
    out.append(
        f"Command: `{_command(cfg)}` (from the repository root; `just bench` runs the same)."
    )
    out.append("")
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items())
    loop = "uvloop" if machine["uvloop_in_venv"] else "asyncio"
    parser = "httptools" if machine["httptools_in_venv"] else "h11"
    out.append(
        f"Machine: {machine['cpus']} CPUs ({machine['cpu_model']}), Python {machine['python']}, "
        f"{machine['platform']}. Parley at {machine['commit']}"
        f"{' with uncommitted changes in src/' if machine['dirty'] else ''}. "
        f"Server stack as installed: uvicorn with the {loop} loop and the {parser} parser; "
        f"{versions}."
    )
    out.append("")
    out.append(
        f"Method: closed loop, {cfg['repetitions']} repetition(s) of the whole matrix in rotated "
        f"order, {cfg['warmup_s']:g} s warm-up + {cfg['duration_s']:g} s measured per cell; "
        f"medians over repetitions. Load generator: `bench/loadgen.py` in its own process; "
        f"the fake upstream, the floor app and Parley are separate processes on 127.0.0.1. "
        f"Everything shares the {machine['cpus']} CPUs. Run time {data.get('elapsed_s', 0):.0f} s."
    )
    out.append("")
    out += _targets(data)
    out += _comparison(m, cfg["concurrencies"])
    out += _matrix(m, cfg)
    out += _memory(data)
    out += _queries(data)
    out += _sqlite_paths(data)
    out += _transport(data)
    out += _experiments(data)
    out += _cpu_profile(data)
    out += _profile(data)
    out += _generator(data)
    for step, error in data.get("failed_steps", {}).items():
        out.append(f"Step `{step}` failed: `{error[:300]}`")
    return "\n".join(out).rstrip() + "\n"


def _command(cfg: dict[str, Any]) -> str:
    return ".venv/bin/python " + cfg["command"]


def _get(m: dict[str, Any], target: str, workload: str, c: int, field: str) -> float | None:
    row = m.get(f"{target}|{workload}|{c}")
    return None if row is None else row.get(field)


def _targets(data: dict[str, Any]) -> list[str]:
    m = data["matrix"]
    rows: list[tuple[str, str, str, bool | None]] = []
    backend = data["config"]["backend"]
    cs = data["config"]["concurrencies"]

    if 16 in cs:
        ratio = _ratio(_get(m, "parley", "chat", 16, "rps"), _get(m, "floor", "chat", 16, "rps"))
        rows.append(
            (
                f"Chat, non-streaming, {backend}, c=16: req/s vs the floor",
                f"{_n(_get(m, 'parley', 'chat', 16, 'rps'))} vs "
                f"{_n(_get(m, 'floor', 'chat', 16, 'rps'))} req/s = {_pct(ratio)}",
                "≥ 70%",
                None if ratio is None else ratio >= 0.70,
            )
        )
        inline = _get(m, "floor-inline", "chat", 16, "rps")
        if inline is not None:
            ratio = _ratio(_get(m, "parley", "chat", 16, "rps"), inline)
            rows.append(
                (
                    "(the same against the floor on Parley's SQLite driver)",
                    f"{_n(_get(m, 'parley', 'chat', 16, 'rps'))} vs {_n(inline)} req/s = "
                    f"{_pct(ratio)}",
                    "≥ 70%",
                    None if ratio is None else ratio >= 0.70,
                )
            )
    if 1 in cs:
        added = _diff(_get(m, "parley", "chat", 1, "p50"), _get(m, "ceiling", "chat", 1, "p50"))
        rows.append(
            (
                "Chat, c=1: added p50 latency over the direct upstream",
                f"{_f(added)} ms ({_f(_get(m, 'parley', 'chat', 1, 'p50'))} - "
                f"{_f(_get(m, 'ceiling', 'chat', 1, 'p50'))})",
                "≤ 2 ms",
                None if added is None else added <= 2.0,
            )
        )
        ttft = _diff(
            _get(m, "parley", "stream", 1, "ttft_p50"), _get(m, "ceiling", "stream", 1, "ttft_p50")
        )
        rows.append(
            (
                "Streaming, c=1: added time-to-first-token p50 over the direct upstream",
                f"{_f(ttft)} ms ({_f(_get(m, 'parley', 'stream', 1, 'ttft_p50'))} - "
                f"{_f(_get(m, 'ceiling', 'stream', 1, 'ttft_p50'))})",
                "≤ 1 ms",
                None if ttft is None else ttft <= 1.0,
            )
        )
    q = data.get("queries")
    if q:
        chat = q["chat"]
        rows.append(
            (
                "Chat path: SQL statements and commits per exchange",
                f"{chat['statements']:g} statements, {chat['commits']:g} commits "
                f"({chat['transactions']:g} transactions, {chat['rollbacks']:g} rollbacks)",
                "≤ 6 and ≤ 2",
                chat["statements"] <= 6 and chat["commits"] <= 2,
            )
        )
        small, large = q["history_200_limit50"], q["history_20000_limit50"]
        message_queries = [s for s in large["sql"] if "FROM messages" in s]
        unbounded = [s for s in message_queries if "LIMIT" not in s]
        rows.append(
            (
                "History load: one bounded query whatever the length",
                f"{len(message_queries)} queries on messages"
                + (f", {len(unbounded)} without LIMIT (`{unbounded[0][:60]}`)" if unbounded else "")
                + f"; {_f(small.get('ms_in_process'), 1)} ms at 200 vs "
                f"{_f(large.get('ms_in_process'), 1)} ms at 20,000 messages (in-process)",
                "1 bounded query",
                len(message_queries) == 1 and not unbounded,
            )
        )
        few, many = q["list_12"], q["list_2000"]
        unbounded = [s for s in many["sql"] if "FROM conversations" in s and "LIMIT" not in s]
        rows.append(
            (
                "Conversation list: O(page)",
                f"{many['statements']:g} statements"
                + (f", {len(unbounded)} without LIMIT (`{unbounded[0][:60]}`)" if unbounded else "")
                + f"; {_f(few.get('ms_in_process'), 1)} ms with 12 vs "
                f"{_f(many.get('ms_in_process'), 1)} ms with 2,012 conversations (in-process)",
                "O(page)",
                not unbounded,
            )
        )
    memory = data.get("memory", {})
    rss = memory.get("parley_rss_c64_max_mb")
    if rss:
        rows.append(
            (
                "Server RSS under the c=64 runs (max sampled; VmHWM over the run)",
                f"{rss:.0f} MB (VmHWM {memory.get('parley_peak_rss_mb', 0):.0f} MB)",
                "≤ 150 MB",
                rss <= 150,
            )
        )
    transport = data.get("transport")
    if transport:
        top = max(c for c in (r["concurrency"] for r in transport))
        parley_client = _row(transport, "parley", top)
        best = max(
            (r for r in transport if r["concurrency"] == top and r["client"] != "raw"),
            key=lambda r: r["rps"],
        )
        chat_rps = _get(m, "parley", "chat", top, "rps")
        rows.append(
            (
                f"Outbound client not the bottleneck (c={top})",
                f"Parley's client alone: {_n(parley_client and parley_client['rps'])} req/s, "
                f"{_n(parley_client and parley_client['client_cpu_us_per_call'])} µs CPU/call; "
                f"best ({best['client']}): {_n(best['rps'])} req/s, "
                f"{_n(best['client_cpu_us_per_call'])} µs/call; Parley chat {_n(chat_rps)} req/s",
                "client ≫ Parley",
                None
                if parley_client is None or chat_rps is None
                else parley_client["rps"] >= 5 * chat_rps,
            )
        )
    exp = data.get("experiments")
    if exp and 1 in cs:
        results = exp["results"]

        def cpu(variant: str) -> float | None:
            row = results.get(f"{variant}|chat|1")
            return None if row is None else row.get("server_cpu_ms")

        shipped = cpu("baseline (no switch)")
        on, off, both = (
            cpu("+ access log"),
            cpu("- access log"),
            cpu("+ access log + httpx INFO line"),
        )
        if shipped and on and off and both:
            # Whichever way the access log is set by default, its cost is on - off.
            access = (on - off) / off
            lines = (both - off) / off
            # The verdict is about the shipped configuration: does it write a line per
            # request? (Comparing it with "- access log", the same configuration when the
            # access log is off by default, would only measure the machine's noise.)
            quiet = not Settings().access_log
            rows.append(
                (
                    "Logging off the hot path (server CPU per chat request, c=1)",
                    f"as shipped ({'no' if quiet else 'an'} access log line, httpx at "
                    f"WARNING) {_f(shipped)} ms; access log on {_f(on)} / off {_f(off)} ms "
                    f"(costs {_pct(access)}); with httpx's per-call INFO line too {_f(both)} ms "
                    f"({_pct(lines)}); differences under ~10% are noise here",
                    "no per-request line by default",
                    quiet if quiet else abs(shipped - off) / off < 0.05,
                )
            )
    out = [
        "## Targets",
        "",
        "| target | measured | goal | verdict |",
        "|---|---|---|---|",
    ]
    out += [f"| {a} | {b} | {c} | {_verdict(d)} |" for a, b, c, d in rows]
    return [*out, ""]


def _row(rows: list[dict[str, Any]], client: str, c: int) -> dict[str, Any] | None:
    return next((r for r in rows if r["client"] == client and r["concurrency"] == c), None)


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _comparison(m: dict[str, Any], cs: list[int]) -> list[str]:
    out = [
        "## Parley against the ceiling and the floor",
        "",
        "Ceiling = the fake upstream called directly; floor = `bench/minimal_app.py` (same "
        "stack: decode, commit the user's row, call the upstream with httpx, commit the "
        "reply). Added latency is Parley's p50 minus theirs.",
        "",
        "| workload | c | Parley req/s | floor req/s | ceiling req/s | Parley/floor "
        "| Parley/ceiling | Parley p50 ms | added p50 vs ceiling | added p50 vs floor |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for workload in ("chat", "stream"):
        for c in cs:
            p = m.get(f"parley|{workload}|{c}")
            f = m.get(f"floor|{workload}|{c}")
            u = m.get(f"ceiling|{workload}|{c}")
            if not (p and f and u):
                continue
            out.append(
                f"| {WORKLOADS[workload]} | {c} | {_n(p['rps'])} | {_n(f['rps'])} | {_n(u['rps'])} "
                f"| {_pct(_ratio(p['rps'], f['rps']))} | {_pct(_ratio(p['rps'], u['rps']))} "
                f"| {_f(p['p50'])} | {_f(_diff(p['p50'], u['p50']))} "
                f"| {_f(_diff(p['p50'], f['p50']))} |"
            )
    inline_rows = []
    for workload in ("chat", "stream"):
        for c in cs:
            p = m.get(f"parley|{workload}|{c}")
            f = m.get(f"floor-inline|{workload}|{c}")
            if p and f:
                inline_rows.append(
                    f"| {WORKLOADS[workload]} | {c} | {_n(p['rps'])} | {_n(f['rps'])} "
                    f"| {_pct(_ratio(p['rps'], f['rps']))} | {_f(_diff(p['p50'], f['p50']))} "
                    f"| {_f(_diff(p['ttft_p50'], f['ttft_p50']))} |"
                )
    if inline_rows:
        out += [
            "",
            "The floor again, on Parley's own SQLite driver (`minimal_app.py --sqlite-driver "
            "parley`) instead of aiosqlite as shipped: what is left of the difference is "
            "the work Parley does per request, not the driver.",
            "",
            "| workload | c | Parley req/s | floor (Parley's driver) req/s | Parley/floor "
            "| added p50 vs floor | added TTFT p50 vs floor |",
            "|---|---:|---:|---:|---:|---:|---:|",
            *inline_rows,
        ]
    out += [
        "",
        "Time to first token (streamed chat), p50 / p99 ms:",
        "",
        "| c | Parley | floor | ceiling | added p50 vs ceiling | added p50 vs floor |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for c in cs:
        p = m.get(f"parley|stream|{c}")
        f = m.get(f"floor|stream|{c}")
        u = m.get(f"ceiling|stream|{c}")
        if not (p and f and u):
            continue
        out.append(
            f"| {c} | {_f(p['ttft_p50'])} / {_f(p['ttft_p99'])} "
            f"| {_f(f['ttft_p50'])} / {_f(f['ttft_p99'])} "
            f"| {_f(u['ttft_p50'])} / {_f(u['ttft_p99'])} "
            f"| {_f(_diff(p['ttft_p50'], u['ttft_p50']))} "
            f"| {_f(_diff(p['ttft_p50'], f['ttft_p50']))} |"
        )
    return [*out, ""]


def _matrix(m: dict[str, Any], cfg: dict[str, Any]) -> list[str]:
    out = [
        f"## Every cell (median of {cfg['repetitions']})",
        "",
        "req/s with the range over repetitions; latency in ms; server CPU = CPU time of the "
        "server process (all threads) per request; generator CPU = the load generator's own "
        "use of one core; other load = CPUs kept busy by processes this run did not start "
        "(median, max over repetitions) -- the noise on this shared machine.",
        "",
        "| server | workload | c | req/s (min-max) | p50 | p99 | TTFT p50 | TTFT p99 | errors "
        "| server CPU ms/req | generator CPU | other load |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    order = {"ceiling": 0, "floor": 1, "floor-inline": 2, "parley": 3}
    keys = sorted(
        m,
        key=lambda k: (
            order.get(k.split("|")[0], 9),
            list(WORKLOADS).index(k.split("|")[1]),
            int(k.split("|")[2]),
        ),
    )
    for key in keys:
        target, workload, c = key.split("|")
        r = m[key]
        errors = str(r["errors"]) + (f" ({r['first_error']})" if r["errors"] else "")
        out.append(
            f"| {TARGET_NAMES.get(target, 'Parley')} | {WORKLOADS[workload]} | {c} "
            f"| {_n(r['rps'])} ({_n(r['rps_min'])}-{_n(r['rps_max'])}) | {_f(r['p50'])} "
            f"| {_f(r['p99'])} | {_f(r['ttft_p50'])} | {_f(r['ttft_p99'])} | {errors} "
            f"| {_f(r['server_cpu_ms'])} | {_f(r['generator_cpu_pct'], 0)}% "
            f"| {_f(r.get('other_load'))} ({_f(r.get('other_load_max'))}) |"
        )
    return [*out, ""]


def _memory(data: dict[str, Any]) -> list[str]:
    mem = data.get("memory", {})
    if not mem:
        return []
    return [
        "## Memory (Parley server process)",
        "",
        f"- after start-up: {_f(mem.get('parley_rss_after_start_mb'), 0)} MB RSS; "
        f"after the warm-up: {_f(mem.get('parley_rss_after_warmup_mb'), 0)} MB",
        f"- under the c=64 cells: {_f(mem.get('parley_rss_c64_max_mb'), 0)} MB RSS at most "
        "(sampled every 100 ms)",
        f"- peak over the whole run (VmHWM): {_f(mem.get('parley_peak_rss_mb'), 0)} MB; "
        f"the floor app's: {_f(mem.get('floor_peak_rss_mb'), 0)} MB",
        f"- the separate Parley that registered the {mem.get('setup_users')} users "
        f"(argon2id, 4 at a time) and made the data peaked at "
        f"{_f(mem.get('setup_server_peak_rss_mb'), 0)} MB",
        "",
    ]


def _queries(data: dict[str, Any]) -> list[str]:
    q = data.get("queries")
    if not q:
        return []
    from count_queries import markdown

    return ["## SQL per request (`bench/count_queries.py`)", "", markdown(q), ""]


def _sqlite_paths(data: dict[str, Any]) -> list[str]:
    rows = data.get("sqlite_paths")
    if not rows:
        return []
    from sqlite_paths import markdown

    return [
        "## One SQLite transaction, by access path (`bench/sqlite_paths.py`)",
        "",
        "The shape of the chat path's first transaction (BEGIN IMMEDIATE, 3 SELECTs incl. "
        "the newest 49 messages, INSERT ... RETURNING, UPDATE, COMMIT) on Parley's schema. "
        "With aiosqlite every statement, BEGIN, COMMIT and pool reset is a round trip to a "
        "worker thread.",
        "",
        markdown(rows),
        "",
    ]


def _transport(data: dict[str, Any]) -> list[str]:
    rows = data.get("transport")
    if not rows:
        return []
    from transport import markdown

    return [
        "## Outbound HTTP client (`bench/transport.py`)",
        "",
        "Each client alone in one process, closed loop against the fake upstream; `raw` is "
        "the load generator (the fake's own ceiling). `parley` is exactly Parley's "
        "providers' client (httpx over httpx-aiohttp); `httpx-limits-200` is what it was "
        "before (httpx's own pool).",
        "",
        markdown(rows),
        "",
    ]


def _experiments(data: dict[str, Any]) -> list[str]:
    exp = data.get("experiments")
    if not exp:
        return []
    cs = data["config"]["concurrencies"]
    header = " | ".join(f"chat c={c}: req/s, p50/p99 ms" for c in cs)
    out = [
        "## Experiments: what a change would gain (`bench/serve_parley.py`, "
        f"{exp.get('repetitions', 1)} repetition(s))",
        "",
        "Each variant is Parley's own app built by `app_from_environment`, on the same "
        "database and data, changed in one respect only (monkeypatched in bench/, src/ "
        "untouched; the baseline is the same launcher without a switch); cells are "
        "interleaved across variants; medians. Short cells: "
        "differences under ~10% are noise on this machine. Server CPU per request at c=1 "
        "is the steadiest column.",
        "",
        f"| variant | flags | {header} | CPU ms/req, c=1 | stream c=1: TTFT p50 ms |",
        "|---|---|" + "---:|" * (len(cs) + 2),
    ]
    if data.get("experiment_env"):
        env = " ".join(f"{k}={v}" for k, v in data["experiment_env"].items())
        out.insert(-2, f"Every variant, the baseline included, ran with `{env}`.")
        out.insert(-2, "")
    flags = exp.get("flags", {})
    for variant in exp["variants"]:
        cells = []
        for c in cs:
            r = exp["results"].get(f"{variant}|chat|{c}")
            cells.append(
                "-" if r is None else f"{_n(r['rps'])}, {_f(r['p50'], 1)}/{_f(r['p99'], 0)}"
            )
        first = exp["results"].get(f"{variant}|chat|{cs[0]}")
        s = exp["results"].get(f"{variant}|stream|1")
        flag = " ".join(flags.get(variant, [])) or "-"
        out.append(
            f"| {variant} | {flag if flag == '-' else '`' + flag + '`'} "
            f"| {' | '.join(cells)} | {_f(first and first['server_cpu_ms'])} "
            f"| {_f(s and s['ttft_p50'])} |"
        )
    return [*out, ""]


def _cpu_profile(data: dict[str, Any]) -> list[str]:
    prof = data.get("cpu_profile")
    if not prof or not prof.get("available"):
        return []
    out = [
        f"## Where the server's CPU goes: chat, c={prof['concurrency']} "
        f"(py-spy --gil on `parley serve`, {prof['seconds']} s, {prof['samples']} samples, "
        f"{_n(prof['rps'])} req/s, {_f(prof['server_cpu_ms'])} ms CPU per request)",
        "",
        "Samples of whichever thread holds the GIL (event loop and aiosqlite's worker "
        "threads alike), attached from outside: nothing in the server is changed. "
        "Percentages are of CPU samples, not of wall time.",
        "",
        "| library / module (self) | % of CPU |",
        "|---|---:|",
    ]
    out += [f"| {r['name']} | {r['pct']:.1f} |" for r in prof["libraries"][:16]]
    out += ["", "| function (self) | % of CPU |", "|---|---:|"]
    out += [f"| `{r['name']}` | {r['pct']:.1f} |" for r in prof["functions"][:20]]
    out += ["", "| Parley function (inclusive) | % of CPU |", "|---|---:|"]
    out += [f"| `{r['name']}` | {r['pct']:.1f} |" for r in prof["parley_inclusive"][:25]]
    return [*out, ""]


def _profile(data: dict[str, Any]) -> list[str]:
    prof = data.get("profile")
    if not prof or not prof.get("summary"):
        return []
    summary = prof["summary"]
    out = [
        f"## Profile of the chat path (pyinstrument, c={prof['concurrency']}, "
        f"{prof['seconds']:g} s, {_n(prof['rps_under_profiler'])} req/s under the profiler)",
        "",
        "Wall-clock samples of the server's main thread (the event loop; waiting in "
        "`select` is idle time). Full text: `bench/results/<run>-profile-chat.txt`.",
        "",
        "Self time by library:",
        "",
        "| library / module | self % |",
        "|---|---:|",
    ]
    out += [f"| {r['package']} | {r['self_pct']:.1f} |" for r in summary["packages"][:18]]
    out += [
        "",
        "Top functions by self time:",
        "",
        "| function | self % | total % |",
        "|---|---:|---:|",
    ]
    out += [
        f"| `{r['function']}` | {r['self_pct']:.1f} | {r['total_pct']:.1f} |"
        for r in summary["functions"][:20]
    ]
    interesting = [
        r
        for r in summary.get("cumulative", [])
        if r["function"].split(" (")[1].startswith("parley")
    ][:20]
    if interesting:
        out += [
            "",
            "Parley's own functions by total (inclusive) time:",
            "",
            "| function | total % |",
            "|---|---:|",
        ]
        out += [f"| `{r['function']}` | {r['total_pct']:.1f} |" for r in interesting]
    return [*out, ""]


def _generator(data: dict[str, Any]) -> list[str]:
    m = data["matrix"]
    out = [
        "## The load generator",
        "",
        "`bench/loadgen.py` against the fake upstream is the ceiling row above; its own CPU "
        "use is in the last column of every cell.",
    ]
    top = max(
        (r for k, r in m.items() if k.startswith("ceiling|chat|")), key=lambda r: r["rps"] or 0
    )
    parley_peak = max(
        (r["rps"] or 0 for k, r in m.items() if k.startswith("parley|chat|")), default=0
    )
    out.append(
        f"It drove the fake upstream at up to {_n(top['rps'])} req/s using "
        f"{_f(top['generator_cpu_pct'], 0)}% of a core, "
        f"{_f(top['rps'] / parley_peak if parley_peak else None, 0)}x the most chat requests "
        "Parley served per second."
    )
    raw = [r for r in data.get("transport") or [] if r["client"] == "raw"]
    if raw:
        cost = min(r["client_cpu_us_per_call"] for r in raw)
        out.append(
            f"Its own cost per request, from the `raw` rows of the outbound-client table: "
            f"{_f(cost, 0)}-{_f(max(r['client_cpu_us_per_call'] for r in raw), 0)} µs of CPU, "
            f"i.e. room for about {_n(1e6 / cost)} req/s on one core."
        )
    wrk = data.get("wrk")
    if wrk and wrk.get("available"):
        out += [
            "",
            "Cross-check with wrk (`wrk -t1 -c16`, same request bytes, run back to back):",
            "",
            "| target | Python generator req/s (p50 / p99 ms) | wrk req/s (p50 / p99 ms) |",
            "|---|---:|---:|",
        ]
        for row in wrk["rows"]:
            p, w = row["python"], row["wrk"]
            out.append(
                f"| {row['target']} | {_n(p['rps'])} ({_f(p['p50'])} / {_f(p['p99'])}) "
                f"| {_n(w['rps'])} ({_f(w['p50'])} / {_f(w['p99'])}) |"
            )
    elif wrk is not None:
        out.append("wrk is not installed and could not be installed: no cross-check.")
    return [*out, ""]


def main() -> None:
    """Re-render saved runs: ``python bench/report.py bench/results/<run>.json ...``."""
    import argparse
    import json
    from pathlib import Path

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("runs", nargs="+", type=Path)
    for path in parser.parse_args().runs:
        data = json.loads(path.read_text(encoding="utf-8"))
        path.with_suffix(".md").write_text(render(data), encoding="utf-8")
        print(f"wrote {path.with_suffix('.md')}")


if __name__ == "__main__":
    main()
