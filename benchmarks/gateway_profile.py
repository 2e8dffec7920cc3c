"""Where the gateway's CPU goes, per certified invoice (create + certify, the three authorities in
turn, simulators in-process), on SQLite or on the PostgreSQL URL given.

    python benchmarks/gateway_profile.py units [--url URL]      CPU of each database unit
    python benchmarks/gateway_profile.py cprofile OUT [--url URL]   cProfile, database work inline

`units` wraps `Database.call` / `Database.read_call` and adds up the CPU time of the thread that
runs each unit (its statements, the ORM, the commit); nothing else is changed, so the figures are
the real ones. `cprofile` runs every worker-thread hop inline (cProfile only sees one thread) and
dumps the stats to OUT; cProfile inflates pure-Python code, so read it for proportions.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from cryptography.fernet import Fernet

sys.path.insert(0, str(Path(__file__).parent))
import gateway_throughput as bench

from fiscalgate.gateway import create_app, runtime
from fiscalgate.gateway.api.guard import GuardSettings

WARM_UP = 9
KEEP_MEMORY = False  # --keep-memory: the simulators' memory is persisted, as in production


def _name(fn: Callable[..., Any]) -> str:
    code = getattr(fn, "__code__", None)
    if getattr(fn, "__name__", "") == "<lambda>" and code is not None:
        where = Path(code.co_filename)
        return f"lambda at {where.parent.name}/{where.name}:{code.co_firstlineno}"
    return getattr(fn, "__name__", repr(fn))


def units(url: str, n: int) -> None:
    cpu: collections.Counter[str] = collections.Counter()
    count: collections.Counter[str] = collections.Counter()
    for method in ("call", "read_call"):
        original = getattr(runtime.Database, method, None)
        if original is None:  # an older gateway without read-only units
            continue

        def timed(self: Any, fn: Any, *args: Any, _original: Any = original) -> Any:
            start = time.thread_time()
            try:
                return _original(self, fn, *args)
            finally:
                cpu[_name(fn)] += time.thread_time() - start
                count[_name(fn)] += 1

        setattr(runtime.Database, method, timed)

    async def main(app: Any) -> None:
        api, sims = await bench.setup(app, wrap=not KEEP_MEMORY)
        for i in range(WARM_UP):
            await bench.one(api, bench.AUTHORITIES[i % 3], [])
        cpu.clear()
        count.clear()
        cpu0, sim0 = time.process_time(), sum(s.cpu for s in sims)
        for i in range(n):
            await bench.one(api, bench.AUTHORITIES[i % 3], [])
        total, sim = time.process_time() - cpu0, sum(s.cpu for s in sims) - sim0
        await api.aclose()
        db = sum(cpu.values())
        print(
            f"process {total / n * 1e3:.2f} ms/invoice: simulators {sim / n * 1e3:.2f}, "
            f"database units {db / n * 1e3:.2f} ({sum(count.values()) / n:.1f} units), "
            f"rest {(total - sim - db) / n * 1e3:.2f}"
        )
        for name, seconds in cpu.most_common():
            print(
                f"  {name:48s} {seconds / n * 1e3:6.2f} ms/invoice  "
                f"{count[name] / n:.2f} per invoice  {seconds / count[name] * 1e6:6.0f} us each"
            )

    _with_app(url, main)


def profile(url: str, n: int, out: str) -> None:
    async def inline(fn: Callable[..., Any], *args: Any, **_kw: Any) -> Any:
        return fn(*args)

    anyio.to_thread.run_sync = inline  # type: ignore[assignment]

    async def main(app: Any) -> None:
        api, _ = await bench.setup(app, wrap=not KEEP_MEMORY)
        for i in range(WARM_UP):
            await bench.one(api, bench.AUTHORITIES[i % 3], [])
        profiler = cProfile.Profile()
        profiler.enable()
        for i in range(n):
            await bench.one(api, bench.AUTHORITIES[i % 3], [])
        profiler.disable()
        await api.aclose()
        profiler.dump_stats(out)

    _with_app(url, main)
    stats = pstats.Stats(out)
    print(f"{stats.total_tt / n * 1e3:.1f} ms/invoice under cProfile; stats in {out}")
    stats.sort_stats("tottime").print_stats(25)


def _with_app(url: str | None, main: Callable[[Any], Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(
            url or f"sqlite:///{tmp}/profile.db",
            admin_token=bench.ADMIN,
            secret_key=Fernet.generate_key(),
            var_dir=tmp,
            guard=GuardSettings(rate_per_key=0, rate_per_source=0),  # measure the gateway, not them
        )
        try:
            anyio.run(main, app)
        finally:
            app.state.gateway.db.dispose()


def cli() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("mode", choices=("units", "cprofile"))
    parser.add_argument("out", nargs="?", default="gateway.prof", help="cprofile: stats file")
    parser.add_argument("--url", help="database URL (default: a temporary SQLite file)")
    parser.add_argument("--n", type=int, default=90, help="invoices measured (default 90)")
    parser.add_argument(
        "--keep-memory",
        action="store_true",
        help="let the gateway persist its simulators' memory (as `serve` does); default: timed "
        "simulators that are not persisted",
    )
    args = parser.parse_args()
    global KEEP_MEMORY
    KEEP_MEMORY = args.keep_memory
    if args.mode == "units":
        units(args.url, args.n)
    else:
        profile(args.url, args.n, args.out)


if __name__ == "__main__":
    cli()
