"""``registry import [CONFIG] [--dry-run]``: load what distribution (``registry:2``) keeps in the configured storage
into the configured database (``registry.content.importing``), with progress on stderr and a summary on stdout."""

from __future__ import annotations

import argparse
import sys

from registry.config import Config
from registry.content import binding
from registry.content.import_report import Summary
from registry.content.importing import Importer

THROWAWAY_DATABASE = "sqlite+aiosqlite:///:memory:"  # a dry run imports into a temporary file, then drops it


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = commands.add_parser(
        "import", help="load distribution's repositories, manifests, tags and blob links from the storage"
    )
    command.add_argument("config", nargs="?", help="path to config.yml (default: $REGISTRY_CONFIGURATION_PATH)")
    command.add_argument("--dry-run", action="store_true", help="read and check everything, write nothing")
    command.add_argument("--workers", type=int, default=8, help="repositories imported at once (default 8)")
    command.add_argument(
        "--rebind", action="store_true", help="the storage moved: make the database index this one from now on"
    )
    command.add_argument("--batch", type=int, default=200, help="items written in one transaction (default 200)")


async def run(args: argparse.Namespace, config: Config) -> Summary:
    url = THROWAWAY_DATABASE if args.dry_run else config.database_url
    async with binding.opened(config, url=url, bound=not args.dry_run, rebind=args.rebind) as (database, backend):
        importer = Importer(
            backend, database, workers=max(1, args.workers), batch=max(1, args.batch), progress=sys.stderr
        )
        summary = await importer.run()
        if not args.dry_run:
            await binding.mark_imported(database)
    for line in summary.lines(args.dry_run):
        print(line)
    return summary
