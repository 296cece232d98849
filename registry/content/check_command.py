"""``registry check [CONFIG] [--repair] [--deep]``: whether storage holds what the database claims
(``registry.content.checking``); exit status 1 while problems remain."""

from __future__ import annotations

import argparse

from registry.config import Config
from registry.content import binding
from registry.content.checking import Checker, CheckReport


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = commands.add_parser("check", help="check that storage holds every blob and manifest the database names")
    command.add_argument("config", nargs="?", help="path to config.yml (default: $REGISTRY_CONFIGURATION_PATH)")
    command.add_argument("--repair", action="store_true", help="unlink missing or damaged blobs (pushes restore them)")
    command.add_argument("--deep", action="store_true", help="also read every blob and check its digest")


async def run(args: argparse.Namespace, config: Config) -> CheckReport:
    async with binding.opened(config) as (database, backend):
        report = await Checker(backend, database, deep=args.deep, repair=args.repair).run()
    for line in report.lines(args.repair):
        print(line)
    return report


def remaining(report: CheckReport, repair: bool) -> bool:
    """Whether problems remain: those ``--repair`` does not mend (manifests, tags), or any without it."""
    return report.problems > 0 and (not repair or report.bad_manifests + report.stray_tags > 0)
