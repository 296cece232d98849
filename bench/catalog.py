"""Catalog pages over 100,000 repositories, filtered and not: ``.venv/bin/python bench/catalog.py [--repos N]``.

Three servers on free loopback ports: our registry without authentication and distribution's ``docker-registry``
(neither filters: the unfiltered rows, side by side), and our registry with the built-in token service, whose users
may pull a part of the repositories (the filtered rows; distribution lists everything to everyone, so there is
nothing of it to compare). The repositories are written straight into each server's metadata before it starts:
rows of our SQLite database, and for distribution the ``<name>/_layers`` directory its catalog walk looks for.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from servers import SERVER_ENV, Server, compile_ours, config_text, free_port  # noqa: E402

TIMEOUT = httpx.Timeout(600.0, connect=10.0)
SERVICE = "bench.catalog"
SAMPLES = 15
# user -> the repositories its rule lets it pull (every rule also grants the catalog)
RULES: dict[str, list[str]] = {
    "everything": ["*"],
    "team": ["team042/*"],
    "late": ["team099/app99*"],
    "apps": ["*/app007"],
    "named": [f"team{t:03d}/app{t:03d}" for t in range(100)],
}


def names(count: int) -> list[str]:
    return [f"team{i // 1000:03d}/app{i % 1000:03d}" for i in range(count)]


def ours(tmp: Path, label: str, repos: list[str], auth: dict[str, Any] | None) -> Server:
    data_dir = tmp / label
    data_dir.mkdir()
    port = free_port()
    config = yaml.safe_load(config_text(port, data_dir, with_database=True))
    if auth is not None:
        config["auth"] = auth
    path = data_dir / "config.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    subprocess.run([sys.executable, "-m", "registry", "migrate", str(path)], check=True, cwd=data_dir)
    with sqlite3.connect(data_dir / "registry.db") as db:
        rows = [(name, "2026-01-01 00:00:00.000000") for name in repos]
        db.executemany("INSERT INTO repositories (name, created_at) VALUES (?, ?)", rows)
    ready = "/v2/" if auth is None else f"/auth/token?service={SERVICE}"
    command = [sys.executable, "-m", "registry", "serve", str(path)]
    return Server(label, command, port, data_dir, env=SERVER_ENV, ready_path=ready)


def reference(tmp: Path, repos: list[str]) -> Server:
    data_dir = tmp / "reference"
    data_dir.mkdir()
    port = free_port()
    root = data_dir / "storage" / "docker" / "registry" / "v2" / "repositories"
    for name in repos:
        (root / name / "_layers").mkdir(parents=True)
    path = data_dir / "config.yml"
    path.write_text(config_text(port, data_dir, with_database=False))
    return Server("reference", ["docker-registry", "serve", str(path)], port, data_dir, env=SERVER_ENV)


def token_auth(tmp: Path) -> dict[str, Any]:
    htpasswd = tmp / "htpasswd"
    cheap = bcrypt.gensalt(4)  # one login per user: the cost is not what is measured
    htpasswd.write_text("".join(f"{user}:{bcrypt.hashpw(b'pw', cheap).decode()}\n" for user in RULES))
    access = [
        {"users": [user], "repositories": repos, "actions": ["pull"], "catalog": True} for user, repos in RULES.items()
    ]
    server = {"key": str(tmp / "token.pem"), "htpasswd": str(htpasswd), "expiration": "1h", "access": access}
    return {"token": {"service": SERVICE, "issuer": "bench", "server": server}}


def token(client: httpx.Client, user: str) -> str:
    params = {"service": SERVICE, "scope": "registry:catalog:*"}
    response = client.get("/auth/token", params=params, auth=(user, "pw"))
    response.raise_for_status()
    value: str = response.json()["token"]
    return value


def page_ms(client: httpx.Client, url: str, expected: int) -> float:
    """The median of SAMPLES requests for one page, in ms (after one not timed)."""
    times = []
    for index in range(SAMPLES + 1):
        started = time.perf_counter()
        response = client.get(url)
        elapsed = time.perf_counter() - started
        response.raise_for_status()
        got = len(response.json()["repositories"])
        assert got == expected, f"{url}: {got} repositories, expected {expected}"
        if index:
            times.append(elapsed * 1000)
    return statistics.median(times)


def walk_s(client: httpx.Client, n: int, expected: int) -> float:
    """Seconds to walk ``_catalog?n=`` following Link to the end; the median of 3."""
    times = []
    for _ in range(3):
        started = time.perf_counter()
        url: str | None = f"/v2/_catalog?n={n}"
        seen = 0
        while url is not None:
            response = client.get(url)
            response.raise_for_status()
            seen += len(response.json()["repositories"])
            url = response.links.get("next", {}).get("url")
        times.append(time.perf_counter() - started)
        assert seen == expected, f"walked {seen} repositories, expected {expected}"
    return statistics.median(times)


Row = tuple[str, str, float, float | None]  # workload, unit, ours, reference (None: nothing to compare)


def unfiltered_rows(plain: httpx.Client, ref: httpx.Client, repos: list[str], reference_walk: bool) -> list[Row]:
    middle = repos[len(repos) // 2]
    pages: list[tuple[str, str, int]] = [
        ("first page n=100", "/v2/_catalog?n=100", 100),
        (f"page n=100 after last={middle}", f"/v2/_catalog?n=100&last={middle}", 100),
        ("first page n=1000", "/v2/_catalog?n=1000", 1000),
    ]
    rows: list[Row] = []
    for label, url, expected in pages:
        rows.append((f"unfiltered: {label}", "ms", page_ms(plain, url, expected), page_ms(ref, url, expected)))
        print(f"  {rows[-1]}", file=sys.stderr)
    walk = f"unfiltered: walk all {len(repos):,}, n=1000"
    rows.append((walk, "s", walk_s(plain, 1000, len(repos)), walk_s(ref, 1000, len(repos)) if reference_walk else None))
    return rows


def filtered_rows(base_url: str, repos: list[str]) -> list[Row]:
    visible = {
        user: [name for name in repos if any(fnmatchcase(name, g) for g in globs)] for user, globs in RULES.items()
    }
    count, middle = len(repos), repos[len(repos) // 2]
    first = "/v2/_catalog?n=100"
    cases: list[tuple[str, str, Callable[[httpx.Client], float]]] = [
        ("everything", "token, pull on * (every one): first page n=100", _page(first, 100)),
        (
            "team",
            f"token, pull on team042/* ({len(visible['team']):,} of {count:,}): first page n=100",
            _page(first, 100),
        ),
        ("team", f"token, team042/*: page after last={middle} (none follows)", _page(f"{first}&last={middle}", 0)),
        ("team", "token, team042/*: walk n=100", lambda client: walk_s(client, 100, len(visible["team"]))),
        (
            "late",
            f"token, pull on team099/app99* (the last {len(visible['late'])}): first page",
            _page(first, len(visible["late"])),
        ),
        ("named", f"token, pull on {len(RULES['named'])} names: first page n=100", _page(first, 100)),
        (
            "apps",
            f"token, pull on */app007 ({len(visible['apps'])}, a leading *): first page",
            _page(first, min(100, len(visible["apps"]))),
        ),
    ]
    rows: list[Row] = []
    for user, label, measure in cases:
        with httpx.Client(base_url=base_url, timeout=TIMEOUT, trust_env=False) as login:
            headers = {"Authorization": f"Bearer {token(login, user)}"}
        with httpx.Client(base_url=base_url, timeout=TIMEOUT, trust_env=False, headers=headers) as client:
            value = measure(client)
        rows.append((label, "s" if "walk" in label else "ms", value, None))
        print(f"  {rows[-1]}", file=sys.stderr)
    return rows


def _page(url: str, expected: int) -> Callable[[httpx.Client], float]:
    return lambda client: page_ms(client, url, expected)


def render(rows: list[Row]) -> str:
    lines = [["workload", "ours", "reference", "ratio reference/ours"]]
    for label, unit, mine, theirs in rows:
        ratio = "n/a" if theirs is None else f"{theirs / mine:.1f}x"
        lines.append([label, _fmt(mine, unit), "n/a" if theirs is None else _fmt(theirs, unit), ratio])
    widths = [max(len(line[i]) for line in lines) for i in range(4)]
    out = ["| " + " | ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)) + " |" for line in lines]
    out.insert(1, "|" + "|".join("-" * (width + 2) for width in widths) + "|")
    return "\n".join(out)


def _fmt(value: float, unit: str) -> str:
    return f"{value:,.3f} {unit}" if value < 10 else f"{value:,.1f} {unit}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repos", type=int, default=100_000, help="repositories (a multiple of 1,000)")
    parser.add_argument("--no-reference-walk", action="store_true", help="skip distribution's full walk (slow)")
    args = parser.parse_args()
    repos = names(args.repos)
    compile_ours()
    tmp = Path(tempfile.mkdtemp(prefix="bench-catalog-"))
    servers: list[Server] = []
    try:
        started = time.perf_counter()
        servers = [
            ours(tmp, "ours", repos, None),
            reference(tmp, repos),
            ours(tmp, "ours-token", repos, token_auth(tmp)),
        ]
        print(
            f"  {len(repos):,} repositories written for the three servers in {time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )
        for server in servers:
            server.start()
        plain, ref = (httpx.Client(base_url=s.base_url, timeout=TIMEOUT, trust_env=False) for s in servers[:2])
        with plain, ref:
            rows = unfiltered_rows(plain, ref, repos, not args.no_reference_walk)
        rows += filtered_rows(servers[2].base_url, repos)
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(render(rows))
    print()
    print(
        f"Times per page are the median of {SAMPLES} requests on one keep-alive connection (httpx, this process); "
        "walks the median of 3. Ratio: reference/ours, higher is better. Filtered rows: our registry with the "
        "built-in token service, each user's token asking for registry:catalog:* alone; distribution has no filter."
    )


if __name__ == "__main__":
    main()
