"""Load test of ``slimrec serve`` from a second process on 127.0.0.1 (issue 7).

What: starts ``slimrec serve --run RUN`` as a subprocess (the server), waits for
``/health``, then drives it from this process over HTTP (httpx, asyncio):

1. known users (``GET /users/{id}/recommendations``, no generation):
   * open loop at fixed rates (``--rates``, requests/s): requests are sent on a fixed
     schedule whatever the answers do, and latency runs from the *scheduled* send time,
     so a server that falls behind shows it (no coordinated omission);
   * closed loop at ``--concurrency`` levels: that many clients, each sending its next
     request when the last one is answered (throughput at saturation);
2. new histories (``POST /recommend`` with a random history of catalog items, so the
   student writes a rationale for each; no two requests share a history) at
   ``--new-concurrency`` levels, closed loop.

Every phase is bounded by a request count and by ``--max-seconds``. Reported per phase:
requests, errors (non-2xx; 503 counted apart), p50 / p99 / max latency in ms and
throughput (answered requests / wall seconds). Prints Markdown; ``--out`` also writes JSON.

Usage:
    .venv/bin/python bench/serve_load.py --run /tmp/qs-run --out bench/results/serve.json
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np

from slimrec.machine import describe


def start_server(args: argparse.Namespace) -> subprocess.Popen:
    """``slimrec serve --port 0``: the server binds a free port itself (no other process can
    take one picked for it) and prints its address once loaded."""
    command = [sys.executable, "-m", "slimrec.cli", "serve", "--run", args.run]
    command += ["--method", args.method, "--port", "0", "--max-pending", "16"]
    if args.backbone:
        command += ["--backbone", args.backbone]
    if args.threads:
        command += ["--threads", str(args.threads)]
    env = os.environ | {"HF_HUB_OFFLINE": "1", "SLIMREC_API_KEY": ""}
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def server_url(server: subprocess.Popen) -> str:
    """The address the server prints once loaded; its whole output if it stops first."""
    printed = []
    for line in iter(server.stdout.readline, b""):
        text = line.decode(errors="replace")
        printed.append(text)
        if found := re.search(r"at (http://127\.0\.0\.1:\d+)/", text):
            # Keep reading its output, so a chatty server never blocks on a full pipe.
            threading.Thread(target=server.stdout.read, daemon=True).start()
            return found.group(1)
    raise SystemExit(f"the server stopped: {''.join(printed).strip()[-2000:]}")


def wait_ready(url: str, server: subprocess.Popen, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server stopped (exit {server.returncode})")
        try:
            return httpx.get(f"{url}/health", timeout=2).json()
        except httpx.HTTPError:
            time.sleep(0.5)
    raise SystemExit("the server did not answer /health in time")


def summary(name: str, latencies: list[float], statuses: list[int], wall: float) -> dict:
    ok = [lat for lat, s in zip(latencies, statuses, strict=True) if 200 <= s < 300]
    ms = np.array(ok) * 1000 if ok else np.array([np.nan])
    return {
        "phase": name,
        "requests": len(statuses),
        "ok": len(ok),
        "busy_503": sum(s == 503 for s in statuses),
        "errors": sum(not 200 <= s < 300 and s != 503 for s in statuses),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "max_ms": round(float(np.max(ms)), 2),
        "throughput_rps": round(len(ok) / wall, 2) if wall > 0 else 0.0,
        "wall_s": round(wall, 2),
    }


async def timed(client: httpx.AsyncClient, request, start: float) -> tuple[float, int]:
    try:
        response = await request(client)
        status = response.status_code
    except httpx.HTTPError:
        status = 599
    return time.perf_counter() - start, status


async def open_loop(url, users, rate, count, max_s, k):
    # At most 64 connections: beyond that requests queue in the client, which the latency
    # (from the scheduled time) still counts; more only slows httpx's own pool down.
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        t0 = time.perf_counter()
        tasks = []
        for i in range(count):
            scheduled = t0 + i / rate
            if scheduled - t0 > max_s:
                break
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            user = users[i % len(users)]

            def req(c, user=user):
                return c.get(f"/users/{user}/recommendations", params={"k": k})

            tasks.append(asyncio.create_task(timed(client, req, scheduled)))
        # Bounded in time too: whatever has not been answered 30 s after the last send
        # counts as an error (status 599).
        done, late = await asyncio.wait(tasks, timeout=30)
        for task in late:
            task.cancel()
        results = [t.result() for t in done] + [(30.0, 599)] * len(late)
        wall = time.perf_counter() - t0
    latencies = [lat for lat, _ in results]
    statuses = [status for _, status in results]
    return summary(f"known users, open loop {rate:g} req/s", latencies, statuses, wall)


async def closed_loop(name, url, make_request, concurrency, count, max_s):
    latencies: list[float] = []
    statuses: list[int] = []
    sent = 0
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:
        t0 = time.perf_counter()

        async def worker() -> None:
            nonlocal sent
            while sent < count and time.perf_counter() - t0 < max_s:
                i = sent
                sent += 1
                latency, status = await timed(client, make_request(i), time.perf_counter())
                latencies.append(latency)
                statuses.append(status)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    return summary(f"{name}, {concurrency} concurrent", latencies, statuses, wall)


def markdown(rows: list[dict]) -> str:
    lines = [
        "| phase | requests | ok | 503 | errors | p50 ms | p99 ms | max ms | req/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['phase']} | {r['requests']} | {r['ok']} | {r['busy_503']} | {r['errors']} "
            f"| {r['p50_ms']} | {r['p99_ms']} | {r['max_ms']} | {r['throughput_rps']} |"
        )
    return "\n".join(lines)


async def run_all(args: argparse.Namespace, url: str) -> list[dict]:
    users_body = httpx.get(f"{url}/users", params={"limit": 500}).json()
    users = [u["id"] for u in users_body["users"]]
    items_body = httpx.get(f"{url}/items", params={"limit": 100}).json()
    items = [it["id"] for it in items_body["items"]]
    rows = []
    # Warm-up: first requests pay one-time costs (allocations, code paths).
    with httpx.Client(base_url=url) as client:
        for i in range(200):
            client.get(f"/users/{users[i % len(users)]}/recommendations")
    for rate in args.rates:
        count = int(rate * args.seconds_per_rate)
        rows.append(await open_loop(url, users, rate, count, args.max_seconds, args.k))
        print(markdown(rows[-1:]).splitlines()[-1], flush=True)
    for c in args.concurrency:

        def known(i):
            return lambda cl: cl.get(f"/users/{users[i % len(users)]}/recommendations")

        rows.append(
            await closed_loop("known users", url, known, c, args.known_requests, args.max_seconds)
        )
        print(markdown(rows[-1:]).splitlines()[-1], flush=True)
    rng = random.Random(0)
    for c in args.new_concurrency:

        def new(i):
            history = rng.sample(items, rng.randint(5, 12))
            return lambda cl: cl.post("/recommend", json={"history": history, "k": args.k})

        rows.append(
            await closed_loop("new histories", url, new, c, args.new_requests, args.max_seconds)
        )
        print(markdown(rows[-1:]).splitlines()[-1], flush=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", required=True, help="A finished `slimrec run` folder.")
    p.add_argument("--method", default="slim")
    p.add_argument("--backbone", default=None)
    p.add_argument(
        "--threads", type=int, default=None, help="Server's torch threads (default: serve's, 1)."
    )
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--rates", type=float, nargs="+", default=[25, 50, 100])
    p.add_argument("--seconds-per-rate", type=float, default=10)
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    p.add_argument("--known-requests", type=int, default=1000)
    p.add_argument("--new-concurrency", type=int, nargs="+", default=[1, 4])
    p.add_argument("--new-requests", type=int, default=8)
    p.add_argument("--max-seconds", type=float, default=120, help="Cap per phase.")
    p.add_argument("--out", type=Path, default=None, help="Also write the results as JSON.")
    args = p.parse_args()

    load_before = os.getloadavg()
    started = time.perf_counter()
    server = start_server(args)
    try:
        url = server_url(server)
        health = wait_ready(url, server)
        load_s = time.perf_counter() - started
        print(f"server ready in {load_s:.1f} s: {health['model']}", flush=True)
        rows = asyncio.run(run_all(args, url))
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
    print()
    print(markdown(rows))
    print(f"load average before {load_before}, after {os.getloadavg()}")
    result = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "hardware": describe(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "server": health,
        "server_start_s": round(load_s, 1),
        # The machine is shared: its load (1, 5, 15 min) says how much others ran meanwhile.
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "rows": rows,
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=2) + "\n")
        tmp.replace(args.out)


if __name__ == "__main__":
    main()
