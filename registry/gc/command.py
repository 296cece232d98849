"""``registry gc [CONFIG] [--dry-run]``, safe beside a running server, and distribution's offline
``registry garbage-collect [--dry-run] [--delete-untagged] CONFIG`` for scripts written for it.

``gc`` first applies the retention policies (a dry run lists the tags they would delete; the manifests those would
leave untagged show in a real run only). Both queue everything nothing references (so that what predates the review
queues is found too), then run the collector until no review is due: the configured delay and leases hold for
``gc``; ``garbage-collect``, meant for a stopped registry as distribution's is, reviews everything at once (delay 0,
no leases) and with ``--delete-untagged`` deletes every untagged manifest no index holds.

Each deletion (a tag by retention, a manifest by the collector) writes its delete event to the notification outbox
in its transaction, as the server's do: a server delivers them (this command posts nothing itself).
"""

from __future__ import annotations

import argparse
import dataclasses

from registry.config import Config
from registry.content import binding
from registry.events.endpoints import Notifications
from registry.events.sink import EventSink, source_of
from registry.gc.collector import Collector, Report
from registry.gc.policies import Policies
from registry.gc.retention import apply_retention


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ours = commands.add_parser("gc", help="delete what nothing references (safe while a server runs on the data)")
    ours.add_argument("config", nargs="?", help="path to config.yml (default: $REGISTRY_CONFIGURATION_PATH)")
    ours.add_argument("--dry-run", action="store_true", help="print what would be deleted, delete nothing")
    legacy = commands.add_parser("garbage-collect", help="distribution's offline garbage collection command line")
    legacy.add_argument("config", help="path to config.yml")
    legacy.add_argument("-d", "--dry-run", action="store_true", help="print what would be deleted, delete nothing")
    legacy.add_argument("-m", "--delete-untagged", action="store_true", help="delete untagged manifests too")


async def run(args: argparse.Namespace, config: Config) -> Report:
    gc = config.storage.gc
    untagged = None
    if args.command == "garbage-collect":
        gc = dataclasses.replace(gc, delay=0.0)
        untagged = (lambda repo: 0.0) if args.delete_untagged else (lambda repo: None)
    async with binding.opened(config) as (database, backend):
        offline = args.command == "garbage-collect"
        policies = Policies.from_config(config)
        events = EventSink(Notifications.from_config(config), source_of(config.http), config.http)
        collector = Collector(database, backend, gc, policies, untagged_after=untagged, offline=offline, events=events)
        tags = [] if offline else await apply_retention(database, policies, dry_run=args.dry_run, events=events)
        if args.dry_run:
            report = await collector.run_once(dry_run=True, queue_everything=True)
        else:
            await collector.queue_everything()
            report = await collector.run_once()
    _print(tags, report, args.dry_run)
    return report


def _print(tags: list[tuple[str, str]], report: Report, dry_run: bool) -> None:
    verb = "would delete" if dry_run else "deleted"
    for repository, tag in tags:
        print(f"{verb} tag {repository}:{tag} (retention)")
    for repository, digest in report.manifests:
        print(f"{verb} manifest {repository}@{digest}")
    for digest, size in report.blobs:
        print(f"{verb} blob {digest} ({size} bytes)")
    ending = " (dry run: nothing was deleted)" if dry_run else ""
    retained = f"{len(tags)} tag(s) by retention, " if tags else ""
    print(f"{'would free' if dry_run else 'freed'}: {retained}{report.summary()}{ending}")
