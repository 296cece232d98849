"""OCI runtime-spec config.json from an image config (runtime-spec config.md, config-linux.md), users by name."""

from __future__ import annotations

import resource
import stat
from pathlib import Path
from typing import Any

import pytest

from runtime import seccomp, spec, users
from runtime.config import Settings
from runtime.errors import UsageError
from runtime.fsroot import InRoot
from runtime.reference import parse
from runtime.spec import RunOptions

IMAGE = {
    "Entrypoint": ["/entry"],
    "Cmd": ["--serve"],
    "Env": ["PATH=/custom/bin", "LANG=C.UTF-8"],
    "WorkingDir": "/srv",
    "Labels": {"org.example": "yes"},
    "ExposedPorts": {"80/tcp": {}},
}


def build(opts: RunOptions, image: dict[str, Any] | None = None, user: users.User | None = None) -> dict[str, Any]:
    return spec.build(
        container_id="a" * 64,
        bundle=Path("/b"),
        rootfs=Path("/b/rootfs"),
        image=IMAGE if image is None else image,
        opts=opts,
        user=user or users.User(),
        host_env={"FROM_HOST": "h"},
    )


def test_image_config_becomes_the_process() -> None:
    doc = build(RunOptions())
    process = doc["process"]
    assert process["args"] == ["/entry", "--serve"]
    assert process["cwd"] == "/srv"
    assert "PATH=/custom/bin" in process["env"] and "LANG=C.UTF-8" in process["env"]
    assert f"HOSTNAME={'a' * 12}" in process["env"] and "HOME=/" in process["env"]
    assert doc["hostname"] == "a" * 12
    assert doc["annotations"] == {
        "org.opencontainers.image.label.org.example": "yes",
        "org.opencontainers.image.exposedPorts": "80/tcp",
    }
    assert doc["root"] == {"path": "/b/rootfs", "readonly": False}
    assert process["terminal"] is False


@pytest.mark.parametrize(
    ("opts", "args"),
    [
        (RunOptions(command=["x", "y"]), ["/entry", "x", "y"]),
        (RunOptions(entrypoint="/bin/sh"), ["/bin/sh"]),
        (RunOptions(entrypoint="/bin/sh", command=["-c", "id"]), ["/bin/sh", "-c", "id"]),
        (RunOptions(entrypoint="", command=["ls"]), ["ls"]),
    ],
)
def test_entrypoint_and_cmd_follow_docker(opts: RunOptions, args: list[str]) -> None:
    assert build(opts)["process"]["args"] == args


def test_no_command_at_all_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="no command"):
        build(RunOptions(), image={})


def test_env_overrides_and_host_passthrough() -> None:
    env = build(RunOptions(env=["LANG=fr", "FROM_HOST", "MISSING"], workdir="/w"))["process"]
    assert "LANG=fr" in env["env"] and "FROM_HOST=h" in env["env"]
    assert not any(e.startswith("MISSING") for e in env["env"])
    assert env["cwd"] == "/w"


def test_isolation_defaults() -> None:
    doc = build(RunOptions(memory=64 << 20, pids_limit=50))
    linux = doc["linux"]
    assert {n["type"] for n in linux["namespaces"]} == {"pid", "mount", "uts", "ipc", "network"}
    assert linux["resources"]["memory"] == {"limit": 64 << 20}
    assert linux["resources"]["pids"] == {"limit": 50}
    assert "/proc/kcore" in linux["maskedPaths"] and "/proc/sys" in linux["readonlyPaths"]
    caps = doc["process"]["capabilities"]
    assert len(caps["bounding"]) == 14 and "CAP_SYS_ADMIN" not in caps["bounding"]
    assert caps["effective"] == caps["bounding"]
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    nofile = doc["process"]["rlimits"][0]
    assert nofile["type"] == "RLIMIT_NOFILE" and nofile["hard"] <= (hard if hard >= 0 else 1 << 20)
    assert {m["destination"] for m in doc["mounts"]} >= {"/proc", "/dev", "/dev/pts", "/dev/shm", "/sys", "/etc/hosts"}
    host = build(RunOptions(network="host"))["linux"]["namespaces"]
    assert "network" not in {n["type"] for n in host}


def test_non_root_user_has_no_effective_capabilities() -> None:
    caps = build(RunOptions(), user=users.User(1000, 1000))["process"]["capabilities"]
    assert caps["effective"] == [] and caps["permitted"] == [] and len(caps["bounding"]) == 14


def test_seccomp_blocks_the_dangerous_calls() -> None:
    profile = seccomp.profile()
    assert profile["defaultAction"] == "SCMP_ACT_ALLOW"
    denied = {name for rule in profile["syscalls"] if rule.get("errnoRet") == 1 for name in rule["names"]}
    assert {"mount", "umount2", "unshare", "setns", "kexec_load", "init_module", "bpf", "keyctl"} <= denied
    clone_rules = [r for r in profile["syscalls"] if r["names"] == ["clone"]]
    assert any(r["args"][0]["value"] == 0x10000000 for r in clone_rules)  # CLONE_NEWUSER


@pytest.mark.parametrize(
    "volume", ["relative:/x", "/tmp:relative", "/tmp:/x:rx", "/nonexistent-source:/x", "/tmp"]
)  # fmt: skip
def test_bad_volumes_are_usage_errors(volume: str) -> None:
    with pytest.raises(UsageError):
        build(RunOptions(volumes=[volume]))


def test_volume_read_only() -> None:
    mounts = build(RunOptions(volumes=["/tmp:/data:ro"]))["mounts"]
    assert {"destination": "/data", "type": "bind", "source": "/tmp", "options": ["rbind", "rprivate", "ro"]} in mounts


@pytest.fixture
def image_root(tmp_path: Path) -> Path:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n")
    (tmp_path / "etc/group").write_text("root:x:0:\napp:x:1000:\nwheel:x:10:app,other\nstaff:x:50:\n")
    return tmp_path


@pytest.mark.parametrize(
    ("spec_text", "expected"),
    [
        ("", users.User(0, 0, [], "/root")),
        ("app", users.User(1000, 1000, [10], "/home/app")),
        ("1000", users.User(1000, 1000, [10], "/home/app")),
        ("app:staff", users.User(1000, 50, [10], "/home/app")),
        ("4242:4343", users.User(4242, 4343, [], "/")),
    ],
)
def test_users_by_name_and_number(image_root: Path, spec_text: str, expected: users.User) -> None:
    with InRoot(image_root) as root:
        assert users.resolve(root, spec_text) == expected


def test_unknown_user_and_passwd_symlinked_out(image_root: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    with InRoot(image_root) as root, pytest.raises(UsageError, match="unable to find user nobody"):
        users.resolve(root, "nobody")
    outside = tmp_path_factory.mktemp("host") / "passwd"
    outside.write_text("hostuser:x:7:7::/:/bin/sh\n")
    (image_root / "etc/passwd").unlink()
    (image_root / "etc/passwd").symlink_to(outside)
    with InRoot(image_root) as root, pytest.raises(UsageError, match="unable to find user hostuser"):
        users.resolve(root, "hostuser")


def test_login_file_is_private(tmp_path: Path) -> None:
    settings = Settings.load(tmp_path / "conf" / "config.json")
    settings.set_credentials("registry.test", "alice", "s3cret:with:colons")
    settings.save()
    assert stat.S_IMODE((tmp_path / "conf" / "config.json").stat().st_mode) == 0o600
    assert Settings.load(tmp_path / "conf" / "config.json").credentials("registry.test") == (
        "alice",
        "s3cret:with:colons",
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("busybox", "docker.io/library/busybox:latest"),
        ("127.0.0.1:5000/a/b:v1", "127.0.0.1:5000/a/b:v1"),
        ("localhost/x", "localhost/x:latest"),
        ("reg.io/x@sha256:" + "a" * 64, "reg.io/x@sha256:" + "a" * 64),
    ],
)
def test_references_normalise_like_docker(text: str, expected: str) -> None:
    assert str(parse(text)) == expected


@pytest.mark.parametrize("text", ["UPPER/case", "a/b:bad tag", "x@sha256:short", "a//b"])
def test_bad_references(text: str) -> None:
    with pytest.raises(UsageError):
        parse(text)
