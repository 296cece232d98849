"""Immutable tags: the checks ``ManifestStore`` makes inside the write transaction that would move or delete a tag,
after taking the repository's row (so no other writer changes the tag between the check and the write).

A refusal is ``409 DENIED`` whose message names the tag and the rule: docker and skopeo print it as
``denied: tag v1 in prod/app is immutable (immutable rule: repositories prod/**; tags v*)``.
"""

from __future__ import annotations

from registry.db import retention_queries
from registry.db.sessions import Reader
from registry.errors import ErrorCode, RegistryError
from registry.gc.policies import ImmutableRule, Policies

IMMUTABLE_STATUS = 409  # the tag's state, not the caller's rights, refuses the request: no credentials would lift it


def immutable_error(repo: str, tag: str, rule: ImmutableRule) -> RegistryError:
    message = f"tag {tag} in {repo} is immutable (immutable rule: {rule.describe()})"
    detail = {"repository": repo, "tag": tag, "rule": {"repositories": rule.repositories, "tags": rule.tags}}
    return ErrorCode.DENIED.error(detail, status=IMMUTABLE_STATUS, message=message)


async def check_tag_write(session: Reader, policies: Policies, repo: str, repo_id: int, tag: str, digest: str) -> None:
    """Refuse to point an immutable tag that exists at another manifest (pushing the same one again is fine)."""
    rule = policies.immutable_rule(repo, tag)
    if rule is None:
        return
    current = await retention_queries.tag_digest(session, repo_id, tag)
    if current is not None and current != digest:
        raise immutable_error(repo, tag, rule)


async def check_tag_delete(session: Reader, policies: Policies, repo: str, repo_id: int, tag: str) -> None:
    """Refuse to delete an immutable tag that exists."""
    rule = policies.immutable_rule(repo, tag)
    if rule is not None and await retention_queries.tag_digest(session, repo_id, tag) is not None:
        raise immutable_error(repo, tag, rule)


async def check_manifest_delete(session: Reader, policies: Policies, repo: str, repo_id: int, digest: str) -> None:
    """Refuse to delete a manifest an immutable tag names, or one an index an immutable tag names lists."""
    if not policies.guards(repo):
        return
    for tag in await retention_queries.tags_holding(session, repo_id, digest):
        rule = policies.immutable_rule(repo, tag)
        if rule is not None:
            raise immutable_error(repo, tag, rule)
