"""Deleting from the UI, through the same content services as the API: a tag (then gone from the API too), a
manifest after a page naming what goes with it (its tags, the manifests it holds, its referrers), refused without
the form's CSRF token, without delete rights, with deletes disabled, and for an immutable tag; the collector's
queues and last run."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import httpx

from registry.gc.collector import Collector
from tests.api_helpers import (
    OCI_MANIFEST,
    app_of,
    descriptor,
    digest_of,
    encode,
    manifest_status,
    push_blob,
    push_image,
    put_manifest,
)
from tests.events.notifying import endpoint, notifying, notifying_client, outbox_events, summary
from tests.ui.helpers import FORM, csrf_of, push_index, ui_client
from tests.ui.test_auth import USERS, sign_in, token_service


async def _delete_tag(client: httpx.AsyncClient, name: str, tag: str, csrf: str | None) -> httpx.Response:
    fields = {"csrf": csrf} if csrf is not None else {}
    return await client.post(f"/r/{name}/tags/{tag}/delete", data=fields, headers=FORM)


async def test_deleting_a_tag_removes_it_as_the_api_does(tmp_path: Path, database_url: str) -> None:
    async with ui_client(tmp_path, database_url) as client:
        await push_image(client, "app", "v1", seed="1")
        await push_image(client, "app", "v2", seed="2")
        page = await client.get("/r/app")
        assert 'action="/r/app/tags/v1/delete"' in page.text
        deleted = await _delete_tag(client, "app", "v1", csrf_of(page))
        assert deleted.status_code == 303 and deleted.headers["location"] == "/r/app?deleted=v1"
        assert await manifest_status(client, "app", "v1") == 404
        assert await manifest_status(client, "app", "v2") == 200
        after = await client.get(deleted.headers["location"])
        assert "Deleted v1." in after.text and 'action="/r/app/tags/v1/delete"' not in after.text
        gc = (await client.get("/gc")).text
        queued = gc.split('<th scope="row">Manifests</th>', 1)[1].split("</tr>", 1)[0]
        assert '<td class="num">1</td>' in queued  # the manifest v1 named awaits review


async def test_a_delete_without_the_csrf_token_is_403_and_deletes_nothing(tmp_path: Path, database_url: str) -> None:
    async with ui_client(tmp_path, database_url) as client:
        _, digest = await push_image(client, "app", "v1")
        page = await client.get("/r/app")
        assert (await _delete_tag(client, "app", "v1", None)).status_code == 403
        assert (await _delete_tag(client, "app", "v1", "forged")).status_code == 403
        plain = await client.post("/r/app/tags/v1/delete", content=json.dumps({"csrf": csrf_of(page)}))
        assert plain.status_code == 415
        manifest_form = await client.post(f"/r/app/manifests/{digest}/delete", data={}, headers=FORM)
        assert manifest_form.status_code == 403
        assert await manifest_status(client, "app", "v1") == 200
        assert await manifest_status(client, "app", digest) == 200


async def test_deleting_a_manifest_names_what_goes_with_it_first(tmp_path: Path, database_url: str) -> None:
    async with ui_client(tmp_path, database_url) as client:
        index = await push_index(client, "multi", "latest", [("linux", "amd64"), ("linux", "arm64")])
        index_body = (await client.get(f"/v2/multi/manifests/{index}")).content
        await push_blob(client, "multi", b"{}")
        await push_blob(client, "multi", b"signature")
        signature = encode(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "artifactType": "application/vnd.dev.cosign.simplesigning.v1+json",
                "config": descriptor("application/vnd.oci.empty.v1+json", b"{}"),
                "layers": [descriptor("application/octet-stream", b"signature")],
                "subject": descriptor("application/vnd.oci.image.index.v1+json", index_body),
            }
        )
        assert (await put_manifest(client, "multi", digest_of(signature), signature)).status_code == 201
        await put_manifest(client, "multi", "stable", index_body, "application/vnd.oci.image.index.v1+json")
        manifest_page = await client.get(f"/r/multi/manifests/{index}")
        assert f'href="/r/multi/manifests/{index}/delete"' in manifest_page.text
        confirm = await client.get(f"/r/multi/manifests/{index}/delete")
        assert confirm.status_code == 200
        tags = confirm.text.split('id="gone-tags"', 1)[1].split("</li>", 1)[0]
        assert "<strong>latest</strong>" in tags and "<strong>stable</strong>" in tags
        children = json.loads(index_body)["manifests"]
        gone_children = confirm.text.split('id="gone-children"', 1)[1].split("</ul>", 1)[0]
        assert all(child["digest"] in gone_children for child in children)
        assert digest_of(signature) in confirm.text.split('id="gone-referrers"', 1)[1]
        deleted = await client.post(f"/r/multi/manifests/{index}/delete", data={"csrf": csrf_of(confirm)}, headers=FORM)
        assert deleted.status_code == 303
        assert await manifest_status(client, "multi", index) == 404
        assert await manifest_status(client, "multi", "latest") == 404
        gc = await client.get("/gc")
        queued = gc.text.split('<th scope="row">Manifests</th>', 1)[1].split("</tr>", 1)[0]
        assert '<td class="num">3</td>' in queued  # two children and the signature await review


async def test_with_deletes_disabled_nothing_offers_or_takes_a_delete(tmp_path: Path, database_url: str) -> None:
    async with ui_client(tmp_path, database_url, REGISTRY_STORAGE_DELETE_ENABLED="false") as client:
        _, digest = await push_image(client, "app", "v1")
        page = await client.get("/r/app")
        assert "/delete" not in page.text
        assert "/delete" not in (await client.get(f"/r/app/manifests/{digest}")).text
        assert (await _delete_tag(client, "app", "v1", "any")).status_code == 405
        assert (await client.get(f"/r/app/manifests/{digest}/delete")).status_code == 405
        assert await manifest_status(client, "app", "v1") == 200


async def test_an_immutable_tag_is_not_deleted(tmp_path: Path, database_url: str) -> None:
    immutable = json.dumps([{"repositories": ["prod/**"]}])
    async with ui_client(tmp_path, database_url, REGISTRY_IMMUTABLE=immutable) as client:
        await push_image(client, "prod/app", "v1")
        page = await client.get("/r/prod/app")
        refused = await _delete_tag(client, "prod/app", "v1", csrf_of(page))
        assert refused.status_code == 409
        assert "immutable" in refused.text
        assert await manifest_status(client, "prod/app", "v1") == 200


async def test_only_users_with_delete_rights_may_delete(tmp_path: Path) -> None:
    async with token_service(tmp_path) as client:
        await sign_in(client, "alice", USERS["alice"])  # pull on team/*, no delete
        page = await client.get("/r/team/app")
        assert page.status_code == 200 and "/delete" not in page.text
        refused = await _delete_tag(client, "team/app", "v1", csrf_of(page))
        assert refused.status_code == 403
        client.cookies.clear()
        await sign_in(client, "bob", USERS["bob"])
        page = await client.get("/r/public/base")
        assert (await _delete_tag(client, "public/base", "v1", csrf_of(page))).status_code == 403
        other = await _delete_tag(client, "team/app", "v1", csrf_of(page))
        assert other.status_code == 404  # what bob may not pull does not exist for him


async def test_the_gc_page_shows_the_queues_and_the_settings(tmp_path: Path, database_url: str) -> None:
    async with ui_client(tmp_path, database_url, REGISTRY_STORAGE_GC_INTERVAL="1h") as client:
        page = await client.get("/gc")
        assert page.status_code == 200
        assert "enabled, every 3600.0 s" in page.text
        assert "has not run yet" in page.text


async def test_the_gc_page_shows_the_last_run_whichever_worker_made_it(tmp_path: Path, database_url: str) -> None:
    no_delay = {"REGISTRY_STORAGE_GC_DELAY": "0s", "REGISTRY_STORAGE_GC_LEASE": "0s"}
    # the test runs the collector itself: one in the background could take a blob before its manifest names it
    async with ui_client(tmp_path, database_url, REGISTRY_STORAGE_GC_ENABLED="false", **no_delay) as client:
        await push_image(client, "app", "v1")
        page = await client.get("/r/app")
        await _delete_tag(client, "app", "v1", csrf_of(page))
        services = app_of(client).state.services
        other_worker = Collector(services.db, services.backend, services.config.storage.gc)  # not this app's
        await other_worker.run_once()
        gc = await client.get("/gc")
        last = gc.text.split('id="last-run"', 1)[1].split("</p>", 1)[0]
        assert "Finished" in last and "after 3 review(s)" in last  # the manifest and its two blobs
        assert f"on {socket.gethostname()} pid {os.getpid()}:" in last


async def test_a_delete_from_the_ui_is_notified_like_one_from_the_api(tmp_path: Path, database_url: str) -> None:
    async with notifying_client(notifying(tmp_path, database_url, endpoint("hook"))) as client:
        _, digest = await push_image(client, "app", "v1")
        page = await client.get("/r/app")
        assert (await _delete_tag(client, "app", "v1", csrf_of(page))).status_code == 303
        deleted = [event for event in await outbox_events(client) if event["action"] == "delete"]
        assert summary(deleted) == [("delete", "app", "v1")]
