"""`--user` and the image's `User`: names looked up in the image's own /etc/passwd and /etc/group.

The files are read through `fsroot.InRoot`, so a symlinked /etc/passwd can only ever name a file inside the image.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import UsageError
from .fsroot import InRoot


@dataclass
class User:
    uid: int = 0
    gid: int = 0
    additional_gids: list[int] = field(default_factory=list)
    home: str = "/"


def _table(root: InRoot, path: str) -> list[list[str]]:
    try:
        text = root.read_file(path).decode(errors="replace")
    except OSError:
        return []
    return [line.split(":") for line in text.splitlines() if line and not line.startswith("#")]


def resolve(root: InRoot, spec: str) -> User:
    """`name`, `uid`, `name:group`, `uid:gid` (docker's forms) to numeric ids, home and supplementary groups."""
    if not spec:
        spec = "0"
    user_part, _, group_part = spec.partition(":")
    passwd = [row for row in _table(root, "/etc/passwd") if len(row) >= 7]
    groups = [row for row in _table(root, "/etc/group") if len(row) >= 4]
    match = next((row for row in passwd if row[0] == user_part or (user_part.isdigit() and row[2] == user_part)), None)
    if match is not None:
        user = User(int(match[2]), int(match[3]), home=match[5] or "/")
        name = match[0]
    elif user_part.isdigit():
        user, name = User(int(user_part)), ""
    else:
        raise UsageError(f"unable to find user {user_part}: no matching entries in the image's /etc/passwd")
    if group_part:
        found = next((row for row in groups if row[0] == group_part or row[2] == group_part), None)
        if found is not None:
            user.gid = int(found[2])
        elif group_part.isdigit():
            user.gid = int(group_part)
        else:
            raise UsageError(f"unable to find group {group_part}: no matching entries in the image's /etc/group")
    if name:
        user.additional_gids = sorted(
            {int(row[2]) for row in groups if name in row[3].split(",") and int(row[2]) != user.gid}
        )
    return user
