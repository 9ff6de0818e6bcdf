"""leaderServes=no: the leader leaves its clients to the followers, as ZooKeeper's does."""
import socket
import struct

from kazoo.client import KazooClient

from conftest import (Ensemble, four_letter, start_zookeeper_ensemble, stop_zookeeper,
                      wait_until)

NOT_SERVING = "This ZooKeeper instance is not currently serving requests\n"


def answers(port):
    """Whether the server at `port` answers a four-letter word at all."""
    try:
        return four_letter("127.0.0.1:%d" % port, "ruok") == "imok"
    except OSError:
        return False


def handshake_answered(hosts):
    """Whether a new session's handshake gets a reply before the connection closes."""
    host, port = hosts.split(":")
    body = struct.pack(">iqiqi", 0, 0, 30000, 0, 16) + b"\0" * 16
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(struct.pack(">i", len(body)) + body)
        try:
            return s.recv(4) != b""
        except ConnectionResetError:
            return False


def observe(hosts):
    """Once two members follow: what the third, the leader, answers to four-letter words
    and a handshake, and whether a client given every member writes through a follower."""
    def followers():
        return [h for h in hosts if "Mode: follower" in four_letter(h, "srvr")]

    wait_until(lambda: len(followers()) == 2, timeout=30)
    leader = next(h for h in hosts if h not in followers())
    seen = {word: four_letter(leader, word) for word in ["srvr", "stat", "mntr", "ruok", "isro"]}
    seen["handshake answered"] = handshake_answered(leader)
    client = KazooClient(hosts=",".join(hosts))
    client.start()
    try:
        client.create("/leader-serves", b"x")
        seen["written"] = client.get("/leader-serves")[0]
        seen["connected to the leader"] = "%s:%d" % client._connection._socket.getpeername() \
            == leader
    finally:
        client.stop()
    return seen


def test_a_leader_that_does_not_serve_turns_clients_to_the_followers():
    processes, directories, ports = start_zookeeper_ensemble(
        "leaderServes=no\n4lw.commands.whitelist=*\n", ready=answers)
    try:
        seen = {"zookeeper": observe(["127.0.0.1:%d" % port for port in ports])}
    finally:
        for process, directory in zip(processes, directories):
            stop_zookeeper(process, directory)
    ensemble = Ensemble(extra="leaderServes=no\n")
    try:
        seen["zkrs"] = observe([member.hosts for member in ensemble.members])
    finally:
        ensemble.stop()
    assert seen["zkrs"] == seen["zookeeper"]
    assert seen["zkrs"] == {"srvr": NOT_SERVING, "stat": NOT_SERVING, "mntr": NOT_SERVING,
                            "ruok": "imok", "isro": "null", "handshake answered": False,
                            "written": b"x", "connected to the leader": False}
