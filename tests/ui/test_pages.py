"""The UI's pages with authentication off: the repository list (search and n/last paging in SQL, counts, sizes),
a repository's tags (sorting, platforms of an index, the pull line), a manifest (config, layers, children,
referrers), and names, tags and labels escaped everywhere."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.api_helpers import OCI_MANIFEST, descriptor, digest_of, encode, push_blob, push_image, put_manifest
from tests.ui.helpers import config_for, push_config_image, push_index, ui_client

LINKS = re.compile(r'<th scope="row"><a href="/r/([^"]+)">')


def names_on(page: httpx.Response) -> list[str]:
    return LINKS.findall(page.text)


async def test_the_repository_list_is_served_at_the_root_with_counts_sizes_and_last_push(
    tmp_path: Path, database_url: str
) -> None:
    async with ui_client(tmp_path, database_url) as client:
        await push_image(client, "team/app", "v1", seed="1")
        await push_image(client, "team/app", "v2", seed="2")
        await push_image(client, "tools", "latest")
        page = await client.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert names_on(page) == ["team/app", "tools"]
        row = page.text.split('href="/r/team/app"', 1)[1].split("</tr>", 1)[0]
        assert '<td class="num">2</td>' in row  # two tags
        assert " B</td>" in row and "UTC" in row  # the size of its blobs and when it was last pushed


async def test_search_filters_by_a_substring_of_the_name(tmp_path: Path, database_url: str) -> None:
    async with ui_client(tmp_path, database_url) as client:
        for name in ("team/app", "team/db", "tools/app-build", "other"):
            await push_image(client, name, "v1")
        assert names_on(await client.get("/", params={"q": "app"})) == ["team/app", "tools/app-build"]
        assert names_on(await client.get("/", params={"q": "APP"})) == ["team/app", "tools/app-build"]
        assert names_on(await client.get("/", params={"q": "%"})) == []  # LIKE's wildcard is a character here
        assert names_on(await client.get("/", params={"q": "_"})) == []


async def test_pages_of_repositories_follow_n_and_last(tmp_path: Path, database_url: str) -> None:
    names = [f"repo{i:02d}" for i in range(7)]
    async with ui_client(tmp_path, database_url) as client:
        for name in names:
            await push_blob(client, name, name.encode())  # a repository with a blob and no tag is listed too
        seen, url = [], "/?n=3"
        while url:
            page = await client.get(url)
            assert page.status_code == 200
            seen += names_on(page)
            found = re.search(r'rel="next" href="([^"]+)"', page.text)
            url = found.group(1).replace("&amp;", "&") if found else ""
        assert seen == names
        assert "Next page" not in (await client.get("/?n=7")).text


@pytest.mark.parametrize("n", ["0", "-1", "x", "1001", "99999999999999999999"])
async def test_a_bad_page_size_is_a_400_page(tmp_path: Path, database_url: str, n: str) -> None:
    async with ui_client(tmp_path, database_url) as client:
        page = await client.get("/", params={"n": n})
        assert page.status_code == 400
        assert "n must be a number" in page.text


async def test_tags_sort_by_name_and_by_push_date(tmp_path: Path, database_url: str) -> None:
    async with ui_client(tmp_path, database_url) as client:
        for tag in ("b", "c", "a"):
            await push_image(client, "app", tag, seed=tag)
        by_name = await client.get("/r/app")
        assert by_name.status_code == 200
        tags = re.compile(r'<th scope="row"><a href="/r/app/manifests/[^"]+">([^<]+)</a>')
        assert tags.findall(by_name.text) == ["a", "b", "c"]
        assert tags.findall((await client.get("/r/app?sort=name&order=desc")).text) == ["c", "b", "a"]
        assert tags.findall((await client.get("/r/app?sort=pushed&order=asc")).text) == ["b", "c", "a"]
        assert tags.findall((await client.get("/r/app?sort=pushed")).text) == ["a", "c", "b"]  # newest first
        assert (await client.get("/r/app?sort=size")).status_code == 400
        assert '<th scope="col" aria-sort="ascending">' in by_name.text  # on the header, for screen readers


async def test_a_tag_shows_its_digest_size_and_a_pull_line_with_the_host(tmp_path: Path, database_url: str) -> None:
    async with ui_client(tmp_path, database_url) as client:
        _, digest = await push_image(client, "team/app", "v1")
        page = await client.get("/r/team/app")
        assert "docker pull registry.test/team/app:v1" in page.text
        assert f'title="{digest}"' in page.text
        assert 'data-copy="docker pull registry.test/team/app:v1"' in page.text


async def test_an_index_tag_lists_its_platforms_and_its_page_its_children(tmp_path: Path, database_url: str) -> None:
    async with ui_client(tmp_path, database_url) as client:
        digest = await push_index(client, "multi", "latest", [("linux", "amd64"), ("linux", "arm64")])
        page = await client.get("/r/multi")
        assert "<li>linux/amd64</li><li>linux/arm64</li>" in page.text
        manifest = await client.get(f"/r/multi/manifests/{digest}")
        assert manifest.status_code == 200
        children = manifest.text.split('id="children"', 1)[1].split("</table>", 1)[0]
        assert "linux/amd64" in children and "linux/arm64" in children
        assert children.count('href="/r/multi/manifests/sha256:') == 2


async def test_a_manifest_page_shows_the_config_and_the_layers(tmp_path: Path, database_url: str) -> None:
    config = config_for(
        "linux",
        "arm64",
        Entrypoint=["/bin/app"],
        Cmd=["--serve"],
        Env=["PATH=/usr/bin", "MODE=prod"],
        Labels={"org.opencontainers.image.source": "https://example.com/app"},
    )
    layers = [b"layer one", b"layer two, longer"]
    async with ui_client(tmp_path, database_url) as client:
        digest = await push_config_image(client, "app", "v1", config, layers)
        page = await client.get(f"/r/app/manifests/{digest}")
        assert page.status_code == 200
        text = page.text
        assert '<dd id="platform">linux/arm64</dd>' in text
        assert "2026-01-02 03:04:05 UTC" in text
        assert '<code>["/bin/app"]</code>' in text and "--serve" in text
        assert "MODE=prod" in text and "org.opencontainers.image.source" in text
        assert "ADD file:abc in /" in text  # history
        layer_rows = text.split('id="layers"', 1)[1].split("</table>", 1)[0]
        assert digest_of(layers[0])[:19] in layer_rows and "application/vnd.oci.image.layer.v1.tar+gzip" in layer_rows
        assert ">9 B<" in layer_rows and ">17 B<" in layer_rows
        assert "<li>v1</li>" in text  # its tags
        assert "Artifact type" not in text  # an image's config type is no artifact type


async def test_referrers_are_grouped_by_artifact_type(tmp_path: Path, database_url: str) -> None:
    async with ui_client(tmp_path, database_url) as client:
        subject_body, subject = await push_image(client, "app", "v1")
        for artifact_type, data in (
            ("application/vnd.dev.sigstore.bundle+json", b"sig"),
            ("application/spdx+json", b"sbom"),
        ):
            await push_blob(client, "app", data)
            await push_blob(client, "app", b"{}")
            body = encode(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "artifactType": artifact_type,
                    "config": descriptor("application/vnd.oci.empty.v1+json", b"{}"),
                    "layers": [descriptor(artifact_type, data)],
                    "subject": descriptor(OCI_MANIFEST, subject_body),
                }
            )
            assert (await put_manifest(client, "app", digest_of(body), body)).status_code == 201
        page = await client.get(f"/r/app/manifests/{subject}")
        section = page.text.split('id="referrers-h"', 1)[1].split("</section>", 1)[0]
        assert "<h3>application/spdx+json</h3>" in section
        assert "<h3>application/vnd.dev.sigstore.bundle+json</h3>" in section
        assert section.index("spdx") < section.index("sigstore")
        sbom = await client.get(f"/r/app/manifests/{digest_of(body)}")
        assert "<dt>Artifact type</dt><dd><code>application/spdx+json</code></dd>" in sbom.text
        assert f'href="/r/app/manifests/{subject}"' in sbom.text  # its subject


async def test_labels_names_and_tags_are_escaped(tmp_path: Path, database_url: str) -> None:
    evil = '<script>alert("x")</script>'
    config = config_for("linux", "amd64", Labels={evil: evil}, Env=[evil], Cmd=[evil])
    async with ui_client(tmp_path, database_url) as client:
        digest = await push_config_image(client, "app", "v1", config, [b"layer"])
        page = await client.get(f"/r/app/manifests/{digest}")
        assert evil not in page.text
        assert "&lt;script&gt;alert(" in page.text
        searched = await client.get("/", params={"q": evil})
        assert evil not in searched.text and "&lt;script&gt;" in searched.text
        missing = await client.get("/r/app/manifests/sha256:" + "0" * 64)
        assert missing.status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/r/nothing",
        "/r/Bad..Name",
        "/r/app/manifests/sha256:" + "0" * 64,
        "/r/app/manifests/latest",
        "/r/app/manifests/md5:00",
    ],
)
async def test_what_does_not_exist_is_a_404_page(tmp_path: Path, database_url: str, path: str) -> None:
    async with ui_client(tmp_path, database_url) as client:
        await push_image(client, "app", "v1")
        page = await client.get(path)
        assert page.status_code == 404
        assert page.headers["content-type"].startswith("text/html")


async def test_the_static_files_are_served_and_pages_name_nothing_elsewhere(tmp_path: Path, database_url: str) -> None:
    async with ui_client(tmp_path, database_url) as client:
        await push_image(client, "app", "v1")
        for path in ("/", "/r/app"):
            page = await client.get(path)
            assert "http://" not in page.text.replace("http://registry.test", "")
            assert "https://" not in page.text
            assert "default-src 'self'" in page.headers["content-security-policy"]
        assert "body" in (await client.get("/static/ui.css")).text
        assert "addEventListener" in (await client.get("/static/ui.js")).text


@pytest.mark.parametrize("params", [{"last": "a\x00b"}, {"q": "a\x00"}])
async def test_a_nul_in_the_query_is_a_400_page(tmp_path: Path, database_url: str, params: dict[str, str]) -> None:
    async with ui_client(tmp_path, database_url) as client:
        await push_image(client, "app", "v1")
        page = await client.get("/", params=params)
        assert page.status_code == 400
        assert "must not contain NUL" in page.text


async def test_only_a_tag_or_a_digest_is_shown_as_deleted(tmp_path: Path, database_url: str) -> None:
    async with ui_client(tmp_path, database_url) as client:
        await push_image(client, "app", "v1")
        assert "Deleted v0." in (await client.get("/r/app?deleted=v0")).text
        page = await client.get("/r/app", params={"deleted": "your account, call +1 555"})
        assert "Deleted" not in page.text and "555" not in page.text


async def test_without_authentication_the_sign_in_page_goes_home(tmp_path: Path, database_url: str) -> None:
    async with ui_client(tmp_path, database_url) as client:
        page = await client.get("/login", params={"next": "/r/app"})
        assert page.status_code == 303 and page.headers["location"] == "/r/app"
