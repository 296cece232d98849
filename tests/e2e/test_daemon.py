"""The stock docker CLI runs containers through `runtime daemon`: run --rm (stdout and stderr split, the exit code),
run -i with stdin piped, run -d then logs -f, ps, stop, rm; a daemon restart keeps stopped containers; a bad
request gets docker's error at once. The image comes from our registry through the daemon's pull."""

from __future__ import annotations

import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .daemons import docker_cli
from .procs import remove_tree, require_root, short_tmpdir, wait_until
from .runtime_cli import RuntimeCli
from .runtime_daemon import RuntimeDaemon
from .server import RegistryServer
from .terminal import Terminal

pytestmark = pytest.mark.e2e


@pytest.fixture
def daemon() -> Iterator[RuntimeDaemon]:
    require_root("runtime daemon runs containers: it")
    d = RuntimeDaemon(short_tmpdir("e2e-rtd-"))
    try:
        d.start()
        yield d
    finally:
        d.stop()


@pytest.fixture
def image(daemon: RuntimeDaemon, registry_server: RegistryServer, busybox_rootfs: Path) -> str:
    """A busybox image our runtime imported and pushed to the registry under test, pulled through the daemon."""
    cli = RuntimeCli(short_tmpdir("e2e-rtpub-"))
    ref = f"{registry_server.host}/e2e/daemon-bb:1"
    try:
        cli("import", "--cmd", '["sh", "-c", "echo hi"]', busybox_rootfs, ref)
        cli("push", ref)
    finally:
        remove_tree(cli.base)
    daemon.docker("pull", ref)
    return ref


def test_the_socket_is_root_only_and_docker_sees_the_daemon(daemon: RuntimeDaemon) -> None:
    info = daemon.socket.stat()
    assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (0o660, 0, 0)
    version = daemon.docker("version", "--format", "{{.Server.APIVersion}} {{.Server.Os}}").stdout
    assert version == "1.41 linux\n"


def test_run_rm_splits_stdout_and_stderr_and_passes_the_exit_code(daemon: RuntimeDaemon, image: str) -> None:
    assert image.rsplit(":", 1)[0] in daemon.docker("images").stdout
    proc = daemon.docker("run", "--rm", image, "sh", "-c", "echo out; echo err >&2; exit 3", check=False)
    assert (proc.returncode, proc.stdout, proc.stderr) == (3, "out\n", "err\n")
    assert daemon.docker("ps", "-aq").stdout == ""  # --rm removed it


def test_run_of_a_missing_image_pulls_it_first(daemon: RuntimeDaemon, image: str) -> None:
    daemon.docker("rmi", image)
    proc = daemon.docker("run", "--rm", image, "sh", "-c", "echo pulled")
    assert proc.stdout == "pulled\n"
    assert f"Unable to find image '{image}' locally" in proc.stderr  # create's 404, then images/create, then create


def test_run_i_feeds_piped_stdin_and_closes_it(daemon: RuntimeDaemon, image: str) -> None:
    proc = daemon.docker("run", "--rm", "-i", image, "sh", "-c", "cat; echo done", input="line 1\nline 2\n")
    assert proc.stdout == "line 1\nline 2\ndone\n"


def test_run_t_gives_the_container_a_terminal(daemon: RuntimeDaemon, image: str) -> None:
    proc = daemon.docker("run", "--rm", "-t", image, "sh", "-c", "tty; echo $TERM; exit 5", check=False)
    assert (proc.returncode, proc.stdout) == (5, "/dev/pts/0\nxterm\n")  # text mode reads \r\n as \n


def test_run_it_on_a_terminal_reads_keys_and_takes_the_window_size(daemon: RuntimeDaemon, image: str) -> None:
    # docker 20.10 sends no ConsoleSize: its resize follows the start, so the shell waits for the size to arrive
    wait_for_size = 'until [ "$(busybox stty size 2>/dev/null)" = "31 97" ]; do busybox usleep 20000; done'
    script = f"{wait_for_size}; echo ready; busybox stty size; read x; echo got $x"
    with Terminal(rows=31, cols=97) as term:
        proc = subprocess.Popen(
            [docker_cli(), "run", "--rm", "-it", image, "sh", "-c", script],
            env=daemon.env, stdin=term.slave, stdout=term.slave, stderr=term.slave, start_new_session=True,
        )  # fmt: skip
        term.close_slave()
        seen = term.read_until(b"ready")
        term.write(b"hello\r")
        seen += term.read_to_end()
        assert proc.wait(timeout=60) == 0
    assert b"31 97" in seen and b"got hello" in seen


def test_detached_then_logs_follow_ps_stop_rm(daemon: RuntimeDaemon, image: str) -> None:
    cid = daemon.docker("run", "-d", "--name", "web", image, "sh", "-c", "echo started; echo e >&2; sleep 300")
    cid_text = cid.stdout.strip()
    assert len(cid_text) == 64
    wait_until(lambda: daemon.docker("logs", "web").stdout == "started\n", what="the container's first line")
    logs = daemon.docker("logs", "web")
    assert (logs.stdout, logs.stderr) == ("started\n", "e\n")
    ps = daemon.docker("ps", "--format", "{{.ID}} {{.Names}} {{.Status}}").stdout.split()
    assert ps[:3] == [cid_text[:12], "web", "Up"]
    follower = daemon.popen("logs", "-f", "web")
    try:
        daemon.docker("stop", "-t", "1", "web")
        out, err = follower.communicate(timeout=30)  # -f ends when the container does
    finally:
        follower.kill()
    assert (follower.returncode, out, err) == (0, "started\n", "e\n")
    status = daemon.docker("ps", "-a", "--format", "{{.Names}} {{.Status}}").stdout
    assert status.startswith("web Exited (137)")
    assert daemon.docker("ps", "-q").stdout == ""
    daemon.docker("rm", "web")
    assert daemon.docker("ps", "-aq").stdout == ""


def test_restart_starts_it_again_and_prune_removes_the_stopped(daemon: RuntimeDaemon, image: str) -> None:
    daemon.docker("run", "-d", "--name", "again", image, "busybox", "sleep", "300")
    first = daemon.docker("inspect", "--format", "{{.State.Pid}}", "again").stdout
    daemon.docker("restart", "-t", "0", "again")
    after = daemon.docker("inspect", "--format", "{{.State.Pid}} {{.State.Running}}", "again").stdout.split()
    assert after[1] == "true" and after[0] != first.strip()
    daemon.docker("run", "--name", "done", image, "sh", "-c", "exit 0")
    pruned = daemon.docker("container", "prune", "-f").stdout
    assert daemon.docker("inspect", "--format", "{{.Id}}", "done", check=False).returncode == 1
    assert "Deleted Containers:" in pruned
    assert daemon.docker("ps", "--format", "{{.Names}}").stdout == "again\n"


def test_exec_splits_streams_passes_the_code_and_takes_stdin_user_dir_env(daemon: RuntimeDaemon, image: str) -> None:
    daemon.docker("run", "-d", "--name", "box", image, "busybox", "sleep", "300")
    proc = daemon.docker("exec", "box", "sh", "-c", "echo out; echo err >&2; exit 4", check=False)
    assert (proc.returncode, proc.stdout, proc.stderr) == (4, "out\n", "err\n")
    piped = daemon.docker("exec", "-i", "box", "sh", "-c", "cat; echo end", input="in\n")
    assert piped.stdout == "in\nend\n"
    who = daemon.docker("exec", "-u", "app", "-w", "/tmp", "-e", "K=V", "box", "sh", "-c", "id -u; pwd; echo $K")
    assert who.stdout == "1000\n/tmp\nV\n"
    tty = daemon.docker("exec", "-t", "box", "sh", "-c", "tty; exit 3", check=False)
    assert (tty.returncode, tty.stdout) == (3, "/dev/pts/0\n")
    with Terminal(rows=24, cols=80) as term:
        shell = subprocess.Popen(
            [docker_cli(), "exec", "-it", "box", "sh"],
            env=daemon.env, stdin=term.slave, stdout=term.slave, stderr=term.slave, start_new_session=True,
        )  # fmt: skip
        term.close_slave()
        term.read_until(b"# ")
        sized = 'until [ "$(busybox stty size)" = "24 80" ]; do busybox usleep 20000; done'  # the resize follows
        term.write(f"{sized}; echo $((6 * 7)); exit 6\r".encode())
        seen = term.read_to_end()
        assert shell.wait(timeout=60) == 6
    assert b"\r\n42\r\n" in seen
    assert daemon.docker("exec", "nosuch", "true", check=False).stderr.strip().endswith("No such container: nosuch")
    top = daemon.docker("top", "box").stdout
    assert "busybox sleep 300" in top and top.startswith("UID")
    daemon.docker("rename", "box", "crate")
    assert daemon.docker("ps", "--format", "{{.Names}}").stdout == "crate\n"


def test_the_runtime_command_and_docker_share_the_store(daemon: RuntimeDaemon, image: str) -> None:
    cli = RuntimeCli(daemon.base)  # the daemon's own store and settings
    cli("run", "-d", "-q", "--name", "by-cli", image, "sh", "-c", "echo from cli; busybox sleep 1; exit 5")
    followed = daemon.docker("logs", "-f", "by-cli")  # ends with the container: its monitor is watched from now
    assert followed.stdout == "from cli\n"
    assert daemon.docker("wait", "by-cli").stdout == "5\n"
    daemon.docker("run", "--name", "by-docker", image, "sh", "-c", "exit 0")
    assert "by-docker" in cli("ps", "-a").stdout


def test_a_daemon_restart_keeps_stopped_containers_and_images(daemon: RuntimeDaemon, image: str) -> None:
    assert daemon.docker("run", "--name", "kept", image, "sh", "-c", "echo bye; exit 4", check=False).returncode == 4
    daemon.restart()
    assert daemon.docker("inspect", "--format", "{{.State.ExitCode}} {{.Name}}", "kept").stdout == "4 /kept\n"
    assert daemon.docker("logs", "kept").stdout == "bye\n"
    assert image.rsplit(":", 1)[0] in daemon.docker("images").stdout
    again = daemon.docker("start", "-a", "kept", check=False)
    assert (again.returncode, again.stdout) == (4, "bye\n")


def test_bad_requests_get_dockers_error_at_once(daemon: RuntimeDaemon, image: str) -> None:
    missing = daemon.docker("logs", "nosuch", check=False)
    assert missing.returncode == 1 and "No such container: nosuch" in missing.stderr
    daemon.docker("run", "-d", "--name", "busy", image, "busybox", "sleep", "300")
    running = daemon.docker("rm", "busy", check=False)
    assert running.returncode == 1 and "cannot remove a running container" in running.stderr
    taken = daemon.docker("run", "-d", "--name", "busy", image, "true", check=False)
    assert taken.returncode == 125 and "already in use" in taken.stderr
    no_cmd = daemon.docker("run", "--rm", image, "/no/such/binary", check=False)
    assert no_cmd.returncode in (126, 127) and "no/such/binary" in no_cmd.stderr
    daemon.docker("rm", "-f", "busy")
