"""The web UI in a real browser (Debian's chromium, driven by Selenium through chromium-driver), over a real server
with the built-in token service: images pushed with docker and an index of two platforms pushed by hand; an
anonymous visitor is sent to the sign-in form; a user finds a repository by search, opens a tag, sees its layers and
an index's platforms, deletes a tag and sees it gone (the API agrees); a user without pull rights sees nothing;
labels and keyboard navigation (Tab reaches the search box and the links, Enter follows them).

Each page is saved as a screenshot under docs/screenshots/ (the README shows one)."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from .daemons import DockerDaemon
from .images import AppImage, make_index, make_oci_image, tar_files
from .procs import missing, run
from .server import REPO_ROOT, RegistryServer, needs_our_server, server_kind

pytestmark = [pytest.mark.e2e, needs_our_server("the web UI")]

SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"
PASSWORDS = {"admin": "admin-pw", "outsider": "outsider-pw"}
SERVICE = "e2e-ui"
TIMEOUT = 20.0
WIDTH, HEIGHT = 1280, 900


def _add_users(path: Path) -> None:
    for user, password in PASSWORDS.items():
        command = [sys.executable, "-m", "registry", "user", "add", user, "--password-stdin", "--file", str(path)]
        run(command, input=password + "\n", cwd=REPO_ROOT)


@pytest.fixture
def ui_server(tmp_path: Path) -> Iterator[RegistryServer]:
    root = tmp_path / "registry"
    root.mkdir()
    _add_users(root / "htpasswd")
    rules = [
        {"users": ["admin"], "repositories": ["*"], "actions": ["*"], "catalog": True},
        {"users": ["outsider"], "repositories": ["other/*"], "actions": ["pull"]},
    ]
    server_settings = {"key": str(root / "token-key.pem"), "htpasswd": str(root / "htpasswd"), "access": rules}
    auth = {"token": {"service": SERVICE, "issuer": "e2e-ui-issuer", "server": server_settings}}
    server = RegistryServer(root, server_kind(), extra_config={"auth": auth})
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def browser() -> Iterator[Any]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        missing("chromium and chromedriver are not installed (apt-get install chromium chromium-driver)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing("selenium is not installed (pip install -e '.[test]')")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument(f"--window-size={WIDTH},{HEIGHT}")
    session = webdriver.Chrome(options=options, service=Service(driver))
    session.implicitly_wait(0)
    try:
        yield session
    finally:
        session.quit()


def _token(server: RegistryServer, *scopes: str) -> str:
    query = [("service", SERVICE), *[("scope", scope) for scope in scopes]]
    response = httpx.get(f"{server.url}/auth/token", params=query, auth=("admin", PASSWORDS["admin"]), trust_env=False)
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


def _push_images(server: RegistryServer, dockerd: DockerDaemon, app_image: AppImage) -> None:
    host = server.host
    dockerd.run("login", "--username", "admin", "--password-stdin", host, input=PASSWORDS["admin"])
    try:
        for tag in ("v1", "v2"):
            dockerd.run("tag", app_image.tag, f"{host}/e2e/app:{tag}")
            dockerd.run("push", f"{host}/e2e/app:{tag}")
            dockerd.run("rmi", f"{host}/e2e/app:{tag}")
    finally:
        dockerd.run("logout", host, check=False)
    images = [make_oci_image([tar_files({"etc/arch": arch.encode()})], arch=arch) for arch in ("amd64", "arm64")]
    with server.client() as client:
        client.http.headers["Authorization"] = "Bearer " + _token(server, "repository:e2e/multi:push,pull")
        for image in images:
            client.push_image("e2e/multi", image)
        client.put_manifest("e2e/multi", "latest", make_index(images))


class Page:
    """The browser on the UI: waits for what it expects (never a sleep), and saves screenshots."""

    def __init__(self, driver: Any, base: str) -> None:
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver = driver
        self.base = base
        self.wait = WebDriverWait(driver, TIMEOUT)

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)

    def path(self) -> str:
        return str(urlsplit(self.driver.current_url).path)

    def until_path(self, path: str) -> None:
        self.wait.until(lambda driver: urlsplit(driver.current_url).path == path)

    def find(self, css: str) -> Any:
        return self.driver.find_element("css selector", css)

    def all(self, css: str) -> list[Any]:
        return list(self.driver.find_elements("css selector", css))

    def texts(self, css: str) -> list[str]:
        return [element.text for element in self.all(css)]

    def shot(self, name: str) -> None:
        """The whole page (the window is made as tall as it for the shot)."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        self.driver.set_window_size(WIDTH, max(HEIGHT, min(int(height), 4000)))
        try:
            assert self.driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))
        finally:
            self.driver.set_window_size(WIDTH, HEIGHT)

    def active(self) -> Any:
        return self.driver.switch_to.active_element

    def tab_to(self, css: str, limit: int = 30) -> Any:
        """Press Tab from the top of the page until ``css`` has the focus: it is reachable by keyboard."""
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.keys import Keys

        target = self.find(css)
        self.driver.execute_script("document.activeElement && document.activeElement.blur(); window.focus();")
        for _ in range(limit):
            ActionChains(self.driver).send_keys(Keys.TAB).perform()
            if self.active() == target:
                return target
        raise AssertionError(f"Tab never reached {css}")

    def sign_in(self, user: str) -> None:
        from selenium.webdriver.common.keys import Keys

        self.until_path("/login")
        assert self.find("label[for=username]").text == "User name"
        assert self.find("label[for=password]").text == "Password"
        self.tab_to("#username").send_keys(user)
        self.tab_to("#password").send_keys(PASSWORDS[user], Keys.ENTER)  # submitted by keyboard
        self.wait.until(lambda driver: urlsplit(driver.current_url).path != "/login")


def test_the_ui_in_a_browser(
    ui_server: RegistryServer, dockerd: DockerDaemon, app_image: AppImage, browser: Any
) -> None:
    from selenium.webdriver.common.keys import Keys

    _push_images(ui_server, dockerd, app_image)
    page = Page(browser, ui_server.url)

    page.open("/r/e2e/app")  # an anonymous visitor is asked to sign in, and comes back after
    page.until_path("/login")
    page.shot("login")
    page.sign_in("admin")
    page.until_path("/r/e2e/app")

    page.open("/")
    assert page.texts("#repositories tbody th a") == ["e2e/app", "e2e/multi"]
    assert page.find("label[for=q]").text == "Search repositories"
    assert page.all("header[role=banner]") and page.all("main#main") and page.all("nav[aria-label=Main]")
    page.shot("repositories")
    page.tab_to("#q").send_keys("mult", Keys.ENTER)  # search by keyboard
    page.wait.until(lambda driver: "q=mult" in driver.current_url)
    assert page.texts("#repositories tbody th a") == ["e2e/multi"]
    page.tab_to("#repositories tbody th a").send_keys(Keys.ENTER)  # a link followed by keyboard
    page.until_path("/r/e2e/multi")
    assert "linux/amd64" in page.texts("ul.platforms li") and "linux/arm64" in page.texts("ul.platforms li")
    page.shot("tags-index")
    page.find("#tags tbody th a").click()
    page.wait.until(lambda driver: "/manifests/" in driver.current_url)
    children = page.texts("#children tbody tr td:first-child")
    assert children == ["linux/amd64", "linux/arm64"]
    page.shot("manifest-index")

    page.open("/?q=app")
    page.find("#repositories tbody th a").click()
    page.until_path("/r/e2e/app")
    assert page.texts("#tags tbody th a") == ["v1", "v2"]
    pull = page.find("#tags tbody tr .pull code").text
    assert pull == f"docker pull {ui_server.host}/e2e/app:v1"
    page.tab_to("#tags tbody tr .pull button.copy").send_keys(Keys.ENTER)  # a button, so the keyboard works it
    page.wait.until(lambda driver: driver.find_element("id", "live").get_attribute("textContent") == f"Copied: {pull}")
    page.shot("tags")
    page.find("#tags tbody th a").click()
    page.wait.until(lambda driver: "/manifests/" in driver.current_url)
    layers = page.all("#layers tbody tr")
    assert len(layers) == 3  # the app image's three layers
    assert all("tar" in row.find_element("css selector", "td:nth-child(3)").text for row in layers)
    assert page.find("#platform").text.startswith("linux/")
    page.shot("manifest")
    page.find("a.button.danger").click()  # delete this manifest…: the confirmation first
    page.wait.until(lambda driver: driver.current_url.endswith("/delete"))
    assert "v1" in page.find("#gone-tags").text and "v2" in page.find("#gone-tags").text
    page.shot("delete-manifest")

    page.open("/r/e2e/app")
    delete_v2 = page.find("button[aria-label='Delete the tag v2']")
    delete_v2.click()
    page.wait.until(lambda driver: _alert(driver))
    browser.switch_to.alert.accept()
    page.wait.until(lambda driver: "deleted=v2" in driver.current_url)
    assert page.texts("#tags tbody th a") == ["v1"]
    assert page.find("p.note").text == "Deleted v2."
    page.shot("tag-deleted")
    bearer = {"Authorization": "Bearer " + _token(ui_server, "repository:e2e/app:pull")}
    gone = httpx.get(f"{ui_server.url}/v2/e2e/app/manifests/v2", headers=bearer, trust_env=False)
    assert gone.status_code == 404
    kept = httpx.head(f"{ui_server.url}/v2/e2e/app/manifests/v1", headers=bearer, trust_env=False)
    assert kept.status_code == 200

    page.open("/gc")
    assert page.find("#queues").is_displayed()
    page.shot("gc")

    page.find("header .who button").click()  # sign out
    page.until_path("/login")
    page.sign_in("outsider")
    page.until_path("/")
    assert page.all("#repositories") == [] and "No repositories here." in page.find("main").text
    page.shot("outsider")
    page.open("/r/e2e/app")
    assert "No such repository." in page.find("main").text
    page.shot("not-found")
    page.open("/?q=e2e")
    assert page.all("#repositories") == []


def _alert(driver: Any) -> bool:
    try:
        driver.switch_to.alert  # noqa: B018
    except Exception:  # NoAlertPresentException
        return False
    return True


def test_workers_accept_each_others_sessions(tmp_path: Path) -> None:
    """With --workers 2 and no http.secret, a session made by one worker is good on the other: every request here
    opens a new connection, which either worker may accept."""
    root = tmp_path / "registry"
    root.mkdir()
    _add_users(root / "htpasswd")
    auth = {"htpasswd": {"realm": "e2e", "path": str(root / "htpasswd")}}
    server = RegistryServer(root, server_kind(), extra_config={"auth": auth}, args=["--workers", "2"])
    try:
        server.start()
        with httpx.Client(base_url=server.url, trust_env=False) as client:
            form = client.get("/login")
            csrf = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
            fields = {"username": "admin", "password": PASSWORDS["admin"], "csrf": csrf, "next": "/"}
            signed = client.post("/login", data=fields)
            assert signed.status_code == 303, signed.text
            cookies = dict(client.cookies)
        statuses = []
        for _ in range(30):
            with httpx.Client(base_url=server.url, trust_env=False, cookies=cookies) as fresh:
                statuses.append(fresh.get("/").status_code)
        assert statuses == [200] * 30
    finally:
        server.stop()
