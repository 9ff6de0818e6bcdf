"""zkrs shell: zkCli.sh's scripted session (../shared/compat, recorded against ZooKeeper
3.8) replayed through `zkrs shell` and compared line by line; one-shot commands and
their exit statuses; zkrs's own tree/find/du/find_big; and the interactive shell driven
in a real terminal (tmux): tab completion of commands and paths, history across runs,
Ctrl-C and Ctrl-D."""
import base64
import os
import shutil
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import BINARY, ROOT, Server, free_ports, wait_until, zkcli

# scripts/test says where the shared checks are (it fails without them); by hand, beside
# the project.
COMPAT = os.environ.get("ZKRS_COMPAT_DIR") or os.path.join(os.path.dirname(ROOT), "shared",
                                                           "compat")


def shell(hosts, *command, stdin=None):
    return subprocess.run([BINARY, "shell", "-server", hosts, *command], input=stdin,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(not os.path.exists(os.path.join(COMPAT, "zkcli-check")),
                    reason="../shared/compat is not there")
def test_zkclis_scripted_session_through_zkrs_shell_matches_zookeepers_transcript():
    work = tempfile.mkdtemp(prefix="zkrs-shell-")
    try:
        wrapper = os.path.join(work, "zkCli.sh")
        with open(wrapper, "w") as f:
            f.write('#!/bin/sh\nexec "%s" shell "$@"\n' % BINARY)
        os.chmod(wrapper, 0o755)
        port, = free_ports(1)
        env = dict(os.environ, ZKCLI=wrapper, ZK_START="%s server" % BINARY,
                   ZKCLI_PORT=str(port))
        result = subprocess.run([os.path.join(COMPAT, "zkcli-check")], env=env,
                                capture_output=True, text=True, timeout=300)
        last = result.stdout.strip().splitlines()[-1]
        assert last.endswith(" passed, 0 failed"), result.stdout + result.stderr
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_one_shot_commands_print_as_zkcli_and_say_how_they_went(server):
    hosts = server.hosts
    created = shell(hosts, "create", "/shell", "top")
    assert created.returncode == 0 and "Created /shell" in created.stderr
    for i in range(3):
        assert shell(hosts, "create", "/shell/n%d" % i, "x" * (10 * i)).returncode == 0
    assert shell(hosts, "create", "/shell/n1/deep", "d").returncode == 0
    got = shell(hosts, "get", "-s", "/shell")
    lines = got.stdout.splitlines()
    assert got.returncode == 0 and "top" in lines and "numChildren = 3" in lines
    missing = shell(hosts, "get", "/shell/missing")
    assert missing.returncode == 1
    assert "Node does not exist: /shell/missing" in missing.stderr
    assert shell(hosts, "ls", "/shell").stdout.splitlines()[-1] == "[n0, n1, n2]"
    tree = shell(hosts, "tree", "/shell").stdout.splitlines()
    assert tree[-5:] == ["/shell", "├── n0", "├── n1", "│   └── deep", "└── n2"], tree
    assert shell(hosts, "find", "/shell", "ee").stdout.splitlines()[-1] == "/shell/n1/deep"
    du = shell(hosts, "du", "/shell").stdout.splitlines()[-1]
    assert du == "34\t5 nodes\t/shell", du
    big = shell(hosts, "find_big", "/shell", "-b", "15").stdout.splitlines()
    assert big[-1] == "20\t0 children\t/shell/n2", big
    # A script on standard input; its status says whether every command worked.
    script = shell(hosts, stdin="set /shell again\nget /shell\ndelete /shell\n")
    assert script.returncode == 1 and "again" in script.stdout
    assert "Node not empty: /shell" in script.stderr
    assert shell(hosts, "deleteall", "/shell").returncode == 0
    assert shell(hosts, "ls", "/").stdout.splitlines()[-1] == "[zookeeper]"


def tmux(*arguments):
    return subprocess.run(["tmux", *arguments], capture_output=True, text=True, timeout=30)


def screen(name):
    return tmux("capture-pane", "-p", "-t", name).stdout


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_the_interactive_shell_in_a_terminal(server):
    home = tempfile.mkdtemp(prefix="zkrs-shell-home-")
    name = "zkrs-shell-%d" % os.getpid()
    command = "HOME=%s %s shell -server %s" % (home, BINARY, server.hosts)
    try:
        client = server.client()
        client.create("/tmuxed/alpha", b"a", makepath=True)
        client.create("/tmuxed/beta", b"b")
        client.stop()
        tmux("new-session", "-d", "-s", name, "-x", "160", "-y", "40", command)
        wait_until(lambda: "(CONNECTED) 0]" in screen(name), timeout=20)
        # A command, then a path, completed with Tab.
        tmux("send-keys", "-t", name, "getAllChildren", "Tab")
        wait_until(lambda: "getAllChildrenNumber" in screen(name), timeout=10)
        tmux("send-keys", "-t", name, " /tmu", "Tab")
        wait_until(lambda: "getAllChildrenNumber /tmuxed" in screen(name), timeout=10)
        tmux("send-keys", "-t", name, "Enter")
        wait_until(lambda: "(CONNECTED) 1]" in screen(name), timeout=10)
        assert "\n2\n" in screen(name)
        tmux("send-keys", "-t", name, "get /tmuxed/al", "Tab", "Enter")
        wait_until(lambda: "(CONNECTED) 2]" in screen(name), timeout=10)
        # Up brings the last line back; Ctrl-C drops it unrun.
        tmux("send-keys", "-t", name, "Up")
        wait_until(lambda: screen(name).rstrip().endswith("get /tmuxed/alpha"), timeout=10)
        tmux("send-keys", "-t", name, "C-c")
        time.sleep(0.3)
        assert "(CONNECTED) 3]" not in screen(name)
        # Ctrl-D ends the session and the shell, keeping the history.
        tmux("send-keys", "-t", name, "C-d")
        wait_until(lambda: tmux("has-session", "-t", name).returncode != 0, timeout=10)
        history = open(os.path.join(home, ".zkrs_shell_history")).read()
        assert "getAllChildrenNumber /tmuxed" in history and "get /tmuxed/alpha" in history
    finally:
        tmux("kill-session", "-t", name)
        shutil.rmtree(home, ignore_errors=True)


# Every outcome of zkCli's quota commands: each limit, nested quotas refused both ways,
# removing one limit and then the quota, bad options and paths.
QUOTA_SCRIPT = """create /q x
create /q/a y
setquota -n 5 /q
setquota -N 10 -B 100 /q
listquota /q
setquota -N 10 /q
setquota -B 100 /q
get /zookeeper/quota/q/zookeeper_limits
listquota /q
setquota -n 3 /q/a
setquota -b 7 /nosuch
listquota /q/a
create /r z
setquota -b 50 /r
setquota -n 1 /r
create /r/more m
setquota -n 1 /r
delquota -b /r
get /zookeeper/quota/r/zookeeper_limits
delquota -n /q
listquota /q
delquota /q
listquota /q
delquota /q
ls /zookeeper/quota
setquota /q
setquota -n 0 /q
setquota -b x /q
setquota -n 2 /zookeeper/quota
setquota -n 2 /
listquota /nosuch
create /p p
create /p/c c
setquota -n 4 /p/c
setquota -n 9 /p
delquota /r
delquota /p/c
ls /zookeeper/quota
"""


def transcript(lines):
    """What a script printed, without the client's connection, watcher and log lines."""
    noise = ("Connecting to", "WATCHER::", "WatchedEvent", "Welcome to", "JLine", "[zk:", "SLF4J:")
    return [line for line in lines
            if line.strip() and not line.startswith(noise) and " INFO " not in line]


# reconfig's option checks, and a server with reconfigEnabled off refusing it.
RECONFIG_SCRIPT = """reconfig
reconfig -s
reconfig -add server.4=127.0.0.1:2888:3888;2181 -members server.1=127.0.0.1:2888:3888
reconfig -file /nonexistent -members server.1=127.0.0.1:2888:3888
reconfig -v zz -remove 3
reconfig -remove 3
reconfig -s -v 100000000 -add server.4=127.0.0.1:2888:3888;2181
"""


def transcripts_of(script):
    """What zkCli.sh and zkrs shell print for `script`, each against a fresh server."""
    transcripts = []
    for run in (lambda hosts: zkcli(hosts, script),
                lambda hosts: (lambda done: (done.stdout + done.stderr).splitlines())(
                    shell(hosts, stdin=script))):
        server = Server()
        try:
            transcripts.append(transcript(run(server.hosts)))
        finally:
            server.stop()
    return transcripts


def test_quota_commands_do_and_print_what_zkclis_do():
    zkclis, ours = transcripts_of(QUOTA_SCRIPT)
    assert "Output quota for /q count=5,bytes=-1=;byteHardLimit=100;countHardLimit=10" in zkclis
    assert ours == zkclis


def test_reconfig_checks_and_refusals_print_what_zkclis_do():
    zkclis, ours = transcripts_of(RECONFIG_SCRIPT)
    assert len(zkclis) >= 7, zkclis
    assert ours == zkclis


def test_watches_are_set_again_on_the_server_a_reconnect_lands_on():
    port, = free_ports(1)
    server = Server(client_port=port)
    directory = server.dir
    shell_process = subprocess.Popen([BINARY, "shell", "-server", server.hosts],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1)
    printed = []
    reader = threading.Thread(target=lambda: printed.extend(iter(shell_process.stdout.readline, "")),
                              daemon=True)
    reader.start()
    try:
        client = server.client()
        client.create("/watched", b"1")
        client.create("/persistent", b"p")
        client.stop()
        shell_process.stdin.write("get -w /watched\naddWatch -m PERSISTENT /persistent\n"
                                  "stat -w /later\n")
        wait_until(lambda: any("Node does not exist: /later" in line for line in printed),
                   timeout=20)
        # The server goes down and comes back on its data (the session is durable);
        # the watches were in the old process only.
        server.kill()
        server = Server(directory=directory, client_port=port)
        shell_process.stdin.write("ls /\n")
        wait_until(lambda: any(line.startswith("[persistent, watched") for line in printed),
                   timeout=20)
        client = server.client()
        client.set("/watched", b"2")
        client.set("/persistent", b"q")
        client.set("/persistent", b"r")
        client.create("/later", b"now")
        client.stop()

        def events():
            return [line.strip() for line in printed if line.startswith("WatchedEvent")]

        wanted = ["WatchedEvent state:SyncConnected type:NodeDataChanged path:/watched",
                  "WatchedEvent state:SyncConnected type:NodeCreated path:/later"]
        wait_until(lambda: all(event in events() for event in wanted)
                   and events().count("WatchedEvent state:SyncConnected type:NodeDataChanged "
                                       "path:/persistent") == 2, timeout=20)
    finally:
        shell_process.stdin.close()
        shell_process.wait(timeout=30)
        server.stop()


def test_binary_data_goes_in_from_a_file_and_out_into_one(server):
    every_byte = bytes(range(256)) * 4
    work = tempfile.mkdtemp(prefix="zkrs-shell-binary-")
    try:
        source, target = os.path.join(work, "in.bin"), os.path.join(work, "out.bin")
        with open(source, "wb") as f:
            f.write(every_byte)
        hosts = server.hosts
        assert shell(hosts, "create", "-f", source, "/binary").returncode == 0
        assert shell(hosts, "create", "-f", source, "/binary-read-only",
                     "world:anyone:r").returncode == 0
        client = server.client()
        assert client.get("/binary")[0] == every_byte
        assert client.get_acls("/binary-read-only")[0][0].perms == 1
        client.set("/binary", every_byte[::-1])
        client.stop()
        assert shell(hosts, "get", "-f", target, "/binary").returncode == 0
        with open(target, "rb") as f:
            assert f.read() == every_byte[::-1]
        assert shell(hosts, "set", "-f", source, "/binary").returncode == 0
        assert shell(hosts, "get", "-f", target, "/binary").returncode == 0
        with open(target, "rb") as f:
            assert f.read() == every_byte
        missing = shell(hosts, "set", "-f", os.path.join(work, "none"), "/binary")
        assert missing.returncode == 1 and "cannot read" in missing.stderr
        # zkCli 3.9's options: set -b takes base64, get -b prints it, get -x a hex dump.
        encoded = base64.b64encode(every_byte[::-1]).decode()
        assert shell(hosts, "set", "/binary", encoded, "-b").returncode == 0
        assert shell(hosts, "get", "-b", "/binary").stdout.splitlines()[-1] == encoded
        assert shell(hosts, "set", "/binary", base64.b64encode(b"zk\x00\xff").decode(),
                     "-b").returncode == 0
        dump = shell(hosts, "get", "-x", "/binary").stdout.splitlines()[-5:]
        assert dump == [
            "         +-------------------------------------------------+",
            "         |  0  1  2  3  4  5  6  7  8  9  a  b  c  d  e  f |",
            "+--------+-------------------------------------------------+----------------+",
            "|00000000| 7a 6b 00 ff                                     |zk..            |",
            "+--------+-------------------------------------------------+----------------+",
        ], dump
    finally:
        shutil.rmtree(work, ignore_errors=True)
