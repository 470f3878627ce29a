"""Which HTTP client: the CPU one polling round costs in ours (httpx + the SSRF guard),
in bare httpx, and in aiohttp, on one feed farm, in one run.

    python benchmarks/http_clients.py [--feeds 300] [--hosts 50] [--latency-ms 20]
                                      [--concurrency 50] [--repeat 3]

Starts the farm of ``benchmarks/farm.py`` (ETag/Last-Modified/304, ~100 KB feeds on
127.0.0.1 … 127.0.0.K) and times two rounds per client, ``--repeat`` times each:

- **unchanged**: every request carries the feed's ETag and is answered 304, so the
  client's own per-request cost is all there is;
- **cold**: no validators, every feed's body is read (about 30 MB).

Each round runs in a child process (this script's ``_round`` entry point) so that its CPU
seconds are the client's alone, not the farm's server threads'. Clients:

- ``ours``: ``aggregator.fetch.fetch_all`` (httpx AsyncClient over the connect-time SSRF
  guard, our per-host and global semaphores, redirects by hand, the body-size cap);
- ``httpx``: a bare ``httpx.AsyncClient`` with the same connection limit;
- ``aiohttp``: an ``aiohttp.ClientSession`` with the same limit (skipped unless installed:
  ``pip install aiohttp``; it is not a dependency of aggregator).

Prints medians: wall seconds, CPU seconds and CPU milliseconds per request, and each
client's CPU as a ratio of ours. Network goes only to 127.0.0.x.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

CLIENTS = ("ours", "httpx", "aiohttp")


# ---------------------------------------------------------------- a round, in a child


async def _round_httpx(jobs: list[dict[str, str]], concurrency: int) -> Counter[int]:
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    gate = asyncio.Semaphore(concurrency)
    statuses: Counter[int] = Counter()
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def one(job: dict[str, str]) -> None:
            headers = {"If-None-Match": job["etag"]} if job.get("etag") else {}
            async with gate:
                response = await client.get(job["url"], headers=headers)
                await response.aread()
                statuses[response.status_code] += 1

        await asyncio.gather(*(one(job) for job in jobs))
    return statuses


async def _round_aiohttp(jobs: list[dict[str, str]], concurrency: int) -> Counter[int]:
    import aiohttp

    statuses: Counter[int] = Counter()
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(job: dict[str, str]) -> None:
            headers = {"If-None-Match": job["etag"]} if job.get("etag") else {}
            async with session.get(job["url"], headers=headers) as response:
                await response.read()
                statuses[response.status] += 1

        await asyncio.gather(*(one(job) for job in jobs))
    return statuses


def _round_ours(jobs: list[dict[str, str]], concurrency: int) -> Counter[int]:
    from aggregator.fetch import fetch_all
    from aggregator.models import FetchRequest
    from aggregator.settings import FetchSettings

    settings = FetchSettings(concurrency=concurrency, per_host=8, allow_private=True)
    requests = [FetchRequest(job["url"], job.get("etag") or None, None) for job in jobs]
    statuses: Counter[int] = Counter()
    for result in fetch_all(requests, settings):
        statuses[getattr(result, "status", 0)] += 1
    return statuses


def child(client: str, jobs_file: Path, concurrency: int) -> None:
    jobs = json.loads(jobs_file.read_text())
    wall, cpu = time.perf_counter(), time.process_time()
    if client == "ours":
        statuses = _round_ours(jobs, concurrency)
    elif client == "httpx":
        statuses = asyncio.run(_round_httpx(jobs, concurrency))
    else:
        statuses = asyncio.run(_round_aiohttp(jobs, concurrency))
    result = {
        "wall": time.perf_counter() - wall,
        "cpu": time.process_time() - cpu,
        "statuses": {str(k): v for k, v in statuses.items()},
    }
    print(json.dumps(result))


# ---------------------------------------------------------------- the parent


def _run_child(client: str, jobs: list[dict[str, str]], concurrency: int) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(jobs, handle)
    try:
        out = subprocess.run(
            [sys.executable, __file__, "_round", client, handle.name, str(concurrency)],
            check=True,
            capture_output=True,
            text=True,
            timeout=600,
        ).stdout
    finally:
        Path(handle.name).unlink()
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def _etags(urls: list[str]) -> dict[str, str]:
    import httpx

    etags = {}
    with httpx.Client() as client:
        for url in urls:
            etags[url] = client.get(url).headers.get("etag", "")
    return etags


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feeds", type=int, default=300)
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from farm import Farm

    clients = [c for c in CLIENTS if c != "aiohttp" or importlib.util.find_spec("aiohttp")]
    if "aiohttp" not in clients:
        print("aiohttp is not installed: skipped (pip install aiohttp)")
    with Farm(args.feeds, args.hosts, latency_ms=args.latency_ms) as farm:
        etags = _etags(farm.urls)
        rounds = {
            "unchanged": [{"url": u, "etag": etags[u]} for u in farm.urls],
            "cold": [{"url": u} for u in farm.urls],
        }
        print(
            f"farm: {args.feeds} feeds on {farm.host_count} hosts, "
            f"{farm.total_bytes / 1e6:.1f} MB, {args.latency_ms:g} ms per request; "
            f"concurrency {args.concurrency}; medians of {args.repeat}"
        )
        print(
            f"{'round':<10} {'client':<8} {'wall s':>7} {'CPU s':>7} {'CPU ms/req':>11} "
            f"{'CPU vs ours':>12}  statuses"
        )
        for name, jobs in rounds.items():
            ours_cpu = None
            for client in clients:
                runs = [_run_child(client, jobs, args.concurrency) for _ in range(args.repeat)]
                wall = statistics.median(r["wall"] for r in runs)
                cpu = statistics.median(r["cpu"] for r in runs)
                ours_cpu = cpu if client == "ours" else ours_cpu
                ratio = f"{cpu / ours_cpu:.2f}" if ours_cpu else "-"
                print(
                    f"{name:<10} {client:<8} {wall:7.2f} {cpu:7.2f} "
                    f"{1000 * cpu / len(jobs):11.2f} {ratio:>12}  {runs[-1]['statuses']}"
                )
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_round":
        child(sys.argv[2], Path(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit(main())
