"""Benchmark our registry against distribution's ``docker-registry``: ``.venv/bin/python bench/run.py [--quick]``."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import starlette
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bare_app  # noqa: E402
import docker_push  # noqa: E402
import workloads as w  # noqa: E402
from servers import SERVER_ENV, Moto, Server, free_port, make_servers  # noqa: E402

Row = tuple[w.Metric, dict[str, float]]
BARE = "bare framework"


def hash_mib_s(total: int = 256 * w.MiB) -> float:
    piece = os.urandom(w.PIECE)
    digest = hashlib.sha256()
    started = time.perf_counter()
    for _ in range(total // w.PIECE):
        digest.update(piece)
    digest.hexdigest()
    return total / w.MiB / (time.perf_counter() - started)


def page_cache_mib_s(tmp: Path, total: int = 256 * w.MiB) -> float:
    path = tmp / "pagecache.bin"
    piece = os.urandom(w.PIECE)
    with path.open("wb") as out:
        for _ in range(total // w.PIECE):
            out.write(piece)
    elapsed = 0.0
    for _ in range(2):  # the first read warms the cache, the second is timed
        started = time.perf_counter()
        with path.open("rb", buffering=0) as src:
            while src.read(w.PIECE):
                pass
        elapsed = time.perf_counter() - started
    path.unlink()
    return total / w.MiB / elapsed


def durable_write_mib_s(tmp: Path, total: int) -> float:
    """Write ``total`` bytes to a new file in 4 MiB pieces and fsync it: what storing an upload costs the machine,
    before any HTTP or hashing (a registry that acknowledges only durable blobs cannot beat it)."""
    path = tmp / "durable.bin"
    piece = os.urandom(w.PIECE)
    started = time.perf_counter()
    with path.open("wb", buffering=0) as out:
        for _ in range(total // w.PIECE):
            out.write(piece)
        os.fsync(out.fileno())
    elapsed = time.perf_counter() - started
    path.unlink()
    return total / w.MiB / elapsed


def fmt(metric: w.Metric, value: float) -> str:
    return f"{value:,.3f} {metric.unit}" if value < 10 else f"{value:,.1f} {metric.unit}"


def table(rows: list[Row]) -> str:
    lines = [["workload", "ours", "reference", "ratio ours/reference"]]
    for metric, values in rows:
        ours, ref = values["ours"], values["reference"]
        ratio = "n/a"  # a value of zero or less (no RSS growth at all) has no meaningful ratio
        if ours > 0 and ref > 0:
            ratio = f"{ours / ref if metric.higher_is_better else ref / ours:.2f}x"
        lines.append(
            [
                metric.name + ("" if metric.higher_is_better else " *"),
                fmt(metric, ours),
                fmt(metric, ref),
                ratio,
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(4)]
    out = ["| " + " | ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)) + " |" for line in lines]
    out.insert(1, "|" + "|".join("-" * (width + 2) for width in widths) + "|")
    return "\n".join(out)


def measure(metric: w.Metric, servers: tuple[Server, ...], rounds: int, body: Callable[[Server], float]) -> Row:
    """``body`` for each server in turn (ours, reference, ours, ...), ``rounds`` times; the medians."""
    samples: dict[str, list[float]] = {s.name: [] for s in servers}
    for round_index in range(rounds):
        for server in servers:
            value = body(server)
            samples[server.name].append(value)
            print(f"  {metric.name} round {round_index + 1} {server.name}: {fmt(metric, value)}", file=sys.stderr)
    return metric, {name: statistics.median(values) for name, values in samples.items()}


def s3_pair(moto: Moto, tmp: Path, redirect: bool, size: int, rounds: int) -> list[Row]:
    """Both servers on their own bucket of one moto server. Redirect on: the uploads, and a GET that follows the
    307 to the presigned URL; redirect off: the GET streamed through the registry."""
    servers = make_servers(tmp, moto.storage(redirect))
    try:
        for server in servers:
            server.start()
        clients = {s.name: httpx.Client(base_url=s.base_url, timeout=w.TIMEOUT) for s in servers}
        rows = s3_rows(servers, clients, redirect, size, rounds)
        for http in clients.values():
            http.close()
        return rows
    finally:
        for server in servers:
            server.stop()


def s3_rows(
    servers: tuple[Server, Server], clients: dict[str, httpx.Client], redirect: bool, size: int, rounds: int
) -> list[Row]:
    source, repo, digests = w.BlobSource(size), "bench/s3", {}
    label = f"S3 {size // w.MiB} MiB"

    def client(server: Server) -> httpx.Client:
        return clients[server.name]

    def put(server: Server) -> float:
        rate, digests[server.name] = w.monolithic_put(client(server), source, repo)
        return rate

    def patch(server: Server) -> float:
        return w.streamed_patch(client(server), source, repo)[0]

    def get(server: Server) -> float:
        fetch = w.blob_get_redirected if redirect else w.blob_get
        return fetch(client(server), repo, digests[server.name], size)

    if not redirect:
        for server in servers:
            put(server)
        return [measure(w.Metric(f"{label}: blob GET, redirect disabled", "MiB/s", True), servers, rounds, get)]
    return [
        measure(w.Metric(f"{label}: monolithic PUT", "MiB/s", True), servers, rounds, put),
        measure(w.Metric(f"{label}: streamed PATCH + PUT", "MiB/s", True), servers, rounds, patch),
        measure(w.Metric(f"{label}: blob GET, 307 + presigned GET", "MiB/s", True), servers, rounds, get),
    ]


def s3_main(quick: bool, rounds: int) -> None:
    """``--s3``: the S3 rows only, against one moto server (both registries are its clients)."""
    size = (64 if quick else 256) * w.MiB
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="regbench-s3-"))
    moto = Moto(tmp / "moto.log")
    rows: list[Row] = []
    try:
        moto.start()
        direct = w.s3_direct(moto.client(), moto.create_bucket(), w.BlobSource(size))
        for redirect in (True, False):
            pair_dir = tmp / ("redirect" if redirect else "no-redirect")
            pair_dir.mkdir()
            rows += s3_pair(moto, pair_dir, redirect, size, rounds)
        moto_rss = moto.rss_mib()
    finally:
        moto.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(table(rows))
    print()
    print("Ratio: higher is better (ours/reference). Both registries store in their own bucket of the same moto_server")
    print(f"(in memory, one process, {moto_rss:,.0f} MiB RSS at the end), same storage.s3 config (chunksize 10 MiB).")
    print(f"Medians of {rounds} interleaved rounds (ours, reference, ours, ...).")
    alone = ", ".join(f"{name} {rate:,.1f} MiB/s" for name, rate in direct.items())
    print(f"moto_server alone, same run (boto3 from this process, 10 MiB parts, no registry): {alone}.")
    print(f"Total run time {time.perf_counter() - started:.0f} s.")


@contextlib.contextmanager
def running(server: Server) -> Iterator[Server]:
    """``server`` started; afterwards stopped and its data deleted, the end of its log printed first on failure."""
    try:
        server.start()
        yield server
    except BaseException:
        print(f"--- {server.name}, {server.state()}: end of {server.log_path} ---", file=sys.stderr)
        print(server.log_tail(), file=sys.stderr)
        raise
    finally:
        server.stop()
        shutil.rmtree(server.data_dir, ignore_errors=True)


def rss_after_blob(tmp: Path, size: int) -> dict[str, float]:
    """Each server in turn, alone, as a fresh process on fresh data: streamed PATCH + PUT of one ``size`` blob, a GET
    of it streamed to the end, then its VmHWM (MiB). The data is deleted before the next server starts."""
    source = w.BlobSource(size)
    peaks: dict[str, float] = {}
    for server in make_servers(tmp):
        with running(server), httpx.Client(base_url=server.base_url, timeout=w.TIMEOUT) as client:
            rate, digest = w.streamed_patch(client, source, "bench/rss")
            down = w.blob_get(client, "bench/rss", digest, size)
            peaks[server.name] = server.peak_rss_mib()
        print(
            f"  {server.name}: {size // w.MiB} MiB blob up {rate:,.1f} MiB/s, down {down:,.1f} MiB/s, "
            f"VmHWM {peaks[server.name]:,.1f} MiB",
            file=sys.stderr,
        )
    return peaks


def docker_rows(tmp: Path, rounds: int) -> list[Row]:
    """`docker push` then, after `docker rmi`, `docker pull` of the 5 x 40 MiB image; each round, for each server in
    turn, a fresh process on fresh data and a new port (a registry docker has never pushed to, so no layer is
    skipped or mounted)."""
    bench = docker_push.DockerBench()
    samples: dict[str, dict[str, list[float]]] = {"push": {}, "pull": {}}
    try:
        started = time.perf_counter()
        bench.start()
        print(f"  docker: built the image in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        for round_index in range(rounds):
            pair_dir = tmp / f"docker-{round_index}"
            pair_dir.mkdir()
            for server in make_servers(pair_dir):
                with running(server):
                    push, pull = bench.push_then_pull(f"127.0.0.1:{server.port}", "bench/docker")
                samples["push"].setdefault(server.name, []).append(push)
                samples["pull"].setdefault(server.name, []).append(pull)
                print(
                    f"  docker round {round_index + 1} {server.name}: push {push:.3f} s, pull {pull:.3f} s",
                    file=sys.stderr,
                )
    finally:
        bench.stop()
    label = f"{docker_push.LAYERS} x {docker_push.LAYER_SIZE // w.MiB} MiB image"
    return [
        (
            w.Metric(f"docker push, {label}", "s", False),
            {name: statistics.median(values) for name, values in samples["push"].items()},
        ),
        (
            w.Metric(f"docker pull after rmi, {label}", "s", False),
            {name: statistics.median(values) for name, values in samples["pull"].items()},
        ),
    ]


def bare_server(tmp: Path) -> Server:
    """The bare framework limit: ``bare_app.py`` (starlette + uvicorn answering a fixed manifest) as a process."""
    data_dir = tmp / "bare"
    data_dir.mkdir()
    port = free_port()
    command = [sys.executable, str(Path(__file__).resolve().parent / "bare_app.py"), str(port)]
    return Server(BARE, command, port, data_dir, env=SERVER_ENV)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="256 MiB big blobs, 3 s wrk runs, 300 repos/tags, 1 GiB RSS blob"
    )
    parser.add_argument("--rounds", type=int, default=None, help="rounds per workload and server (default 2 quick, 3)")
    parser.add_argument("--s3", action="store_true", help="only the S3 rows: both servers on moto (256 MiB, 64 quick)")
    args = parser.parse_args()
    if args.s3:
        s3_main(args.quick, max(2, args.rounds or (2 if args.quick else 3)))
        return
    missing = docker_push.missing_tools()
    if missing:
        raise SystemExit(f"bench/run.py needs {', '.join(missing)} for the docker rows")
    big = (256 if args.quick else 1024) * w.MiB
    rss_small, rss_big = 50 * w.MiB, (1024 if args.quick else 5120) * w.MiB
    seconds = 3 if args.quick else 5
    repos = tags = 300 if args.quick else 10_000
    pushers, push_layer = 20, w.MiB
    rounds = max(2, args.rounds or (2 if args.quick else 3))
    run_started = time.perf_counter()

    tmp = Path(tempfile.mkdtemp(prefix="regbench-"))
    servers = make_servers(tmp)
    bare = bare_server(tmp)
    rows: list[Row] = []
    notes: list[str] = []
    try:
        limits = {
            "sha256": hash_mib_s(),
            "page cache": page_cache_mib_s(tmp),
            "durable write": durable_write_mib_s(tmp, big),
        }
        bare.start()
        for server in servers:
            server.start()
            print(f"{server.name}: ready in {server.startup_seconds:.3f} s on {server.base_url}", file=sys.stderr)
        clients = {s.name: httpx.Client(base_url=s.base_url, timeout=w.TIMEOUT) for s in servers}
        source = w.BlobSource(big)
        state: dict[str, dict[str, str]] = {s.name: {} for s in (*servers, bare)}
        small, layer = os.urandom(1024), os.urandom(32 * 1024)
        for server in servers:
            client = clients[server.name]
            manifest, manifest_digest = w.push_image(client, "bench/small", "latest", layer)
            state[server.name]["manifest_digest"] = manifest_digest
            state[server.name]["small"] = w.upload_small(client, "bench/small", small)

        def run(metric: w.Metric, body: Callable[[Server], float]) -> None:
            rows.append(measure(metric, servers, rounds, body))

        def put_and_remember(server: Server) -> float:
            rate, digest = w.monolithic_put(clients[server.name], source, "bench/big")
            state[server.name]["big"] = digest
            return rate

        def wrk(path: str, method: str = "GET") -> Callable[[Server], float]:
            def body(server: Server) -> float:
                url = server.base_url + path.format(**state[server.name])
                if method == "HEAD":
                    rate, errors = w.head_rate(server.base_url, path.format(**state[server.name]), seconds)
                else:
                    rate, errors = w.wrk(url, seconds)
                if errors:
                    notes.append(f"{server.name} {method} {path}: {errors}")
                return rate

            return body

        pushed = [0]

        def concurrent_pushes(server: Server) -> float:
            pushed[0] += 1
            images = w.small_images(f"bench/push{pushed[0]}", pushers, push_layer)
            return w.concurrent_pushes(server.base_url, images)

        size = f"{big // w.MiB} MiB"
        run(w.Metric(f"monolithic PUT {size}", "MiB/s", True), put_and_remember)
        run(
            w.Metric(f"streamed PATCH {size} + PUT", "MiB/s", True),
            lambda s: w.streamed_patch(clients[s.name], source, "bench/big")[0],
        )
        run(
            w.Metric(f"chunked PATCH 16 MiB x {big // w.CHUNK} + PUT", "MiB/s", True),
            lambda s: w.chunked_patch(clients[s.name], source, "bench/big"),
        )
        run(
            w.Metric(f"blob GET {size}", "MiB/s", True),
            lambda s: w.blob_get(clients[s.name], "bench/big", state[s.name]["big"], big),
        )
        run(
            w.Metric("Range GET last 1 MiB (mean of 20)", "ms", False),
            lambda s: w.range_get_ms(clients[s.name], "bench/big", state[s.name]["big"], big),
        )
        # the bare framework app takes its turn in this row's rounds (ours, reference, bare, ours, ...)
        by_tag = w.Metric("manifest GET by tag, wrk -c64", "req/s", True)
        rows.append(measure(by_tag, (*servers, bare), rounds, wrk("/v2/bench/small/manifests/latest")))
        limits["bare"] = rows[-1][1].pop(BARE)
        bare.stop()
        manifest_by_tag = rows[-1][1]["ours"]
        run(
            w.Metric("manifest GET by digest, wrk -c64", "req/s", True),
            wrk("/v2/bench/small/manifests/{manifest_digest}"),
        )
        run(
            w.Metric("manifest HEAD by tag, asyncio -c64 †", "req/s", True),
            wrk("/v2/bench/small/manifests/latest", "HEAD"),
        )
        run(w.Metric("small blob GET 1 KiB, wrk -c64", "req/s", True), wrk("/v2/bench/small/blobs/{small}"))
        run(
            w.Metric(f"{pushers} docker-style pushes at once, {push_layer // w.MiB} MiB layer each", "s", False),
            concurrent_pushes,
        )

        by_url = {s.base_url: s.name for s in servers}

        def report(created: dict[str, w.Created], what: str) -> None:
            for url, result in created.items():
                print(f"  {by_url[url]}: created {what} in {result.seconds:.1f} s (both at once)", file=sys.stderr)
                for retry in result.retried:
                    print(f"  {by_url[url]}: connection broke, retried: {retry}", file=sys.stderr)
                if result.retried:
                    notes.append(
                        f"{by_url[url]}: creating {what}, {len(result.retried)} request(s) lost their connection "
                        f"without an answer and were retried once (first: {result.retried[0]})"
                    )

        report(w.create_repositories(list(by_url), repos, small), f"{repos:,} repositories")
        run(
            w.Metric(f"catalog walk n=100, {repos:,} repos", "s", False),
            lambda s: w.walk_catalog(clients[s.name], repos),
        )

        report(w.create_tags(list(by_url), "bench/small", manifest, tags), f"{tags:,} tags")
        run(
            w.Metric(f"tags/list x20, {tags:,} tags", "s", False),
            lambda s: w.list_tags(clients[s.name], "bench/small", tags),
        )

        rows.append(
            (w.Metric("startup to first 200 on /v2/", "s", False), {s.name: s.startup_seconds for s in servers})
        )
        rows.append((w.Metric("server peak RSS (VmHWM)", "MiB", False), {s.name: s.peak_rss_mib() for s in servers}))
        for client in clients.values():
            client.close()
        for server in servers:
            server.stop()

        rows += docker_rows(tmp, rounds)

        peaks = {}
        for blob in (rss_small, rss_big):
            pair_dir = tmp / f"rss-{blob // w.MiB}"
            pair_dir.mkdir()
            peaks[blob] = rss_after_blob(pair_dir, blob)
            label = f"{blob // w.MiB} MiB" if blob < 1024 * w.MiB else f"{blob // (1024 * w.MiB)} GiB"
            rows.append((w.Metric(f"peak RSS, fresh server, {label} blob up + down", "MiB", False), peaks[blob]))
        growth = {name: peaks[rss_big][name] - peaks[rss_small][name] for name in peaks[rss_small]}
        big_label = f"{rss_big // (1024 * w.MiB)} GiB"
        rows.append((w.Metric(f"RSS growth {rss_small // w.MiB} MiB → {big_label} blob", "MiB", False), growth))
    except BaseException:
        for server in (*servers, bare):  # what the servers said, before their data directories go
            print(f"--- {server.name}, {server.state()}: end of {server.log_path} ---", file=sys.stderr)
            print(server.log_tail(), file=sys.stderr)
        raise
    finally:
        for server in (*servers, bare):
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    print(table(rows))
    print()
    print("Ratio: higher is better. For rows marked * (times, memory) it is reference/ours; otherwise ours/reference.")
    print(
        f"Medians of {rounds} interleaved rounds (ours, reference, ours, ...); startup, RSS and RSS growth are single "
        "values (each peak RSS row from its own fresh server process)."
    )
    print(
        f"Machine limits, same run: sha256 one core {limits['sha256']:,.1f} MiB/s (256 MiB in 4 MiB pieces); "
        f"page-cache read {limits['page cache']:,.1f} MiB/s (256 MiB file, second read); durable write "
        f"{limits['durable write']:,.1f} MiB/s ({big // w.MiB} MiB to a new file in 4 MiB pieces, then fsync); "
        "bare framework "
        f"{limits['bare']:,.1f} req/s (starlette {starlette.__version__} + uvicorn {uvicorn.__version__}, uvloop + "
        f"httptools, one route answering a fixed {len(bare_app.BODY)}-byte manifest, same wrk -t2 -c64, "
        f"median of {rounds}, interleaved with the manifest GET by tag rounds)."
    )
    print(
        f"Our manifest GET by tag is {manifest_by_tag / limits['bare']:.2f}x the bare framework limit "
        f"({manifest_by_tag:,.1f} / {limits['bare']:,.1f} req/s)."
    )
    uploads = [(m.name, values["ours"]) for m, values in rows if "PUT" in m.name and m.unit == "MiB/s"]
    shares = "; ".join(
        f"{name} {rate / limits['sha256']:.0%} of sha256, {rate / limits['durable write']:.0%} of durable write"
        for name, rate in uploads
    )
    print(f"Our uploads against the machine limits: {shares}.")
    print("† wrk 4.1.0 hangs on HEAD responses (it waits for a body), so HEAD uses a raw-socket asyncio client")
    print("  in this process: 64 keep-alive connections, one request in flight each; client-bound sooner than wrk.")
    for note in notes:
        print(f"Note: {note}")
    print(f"Total run time {time.perf_counter() - run_started:.0f} s.")


if __name__ == "__main__":
    main()
