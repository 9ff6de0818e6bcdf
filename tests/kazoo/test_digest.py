"""The digest scheme's provider as configured, side by side with ZooKeeper 3.8: its hash
(`DigestAuthenticationProvider.digestAlg`) in the ids it grants and the ACLs it fills in,
the super user's digest under that hash, and the provider switched off
(`DigestAuthenticationProvider.enabled=false`).
"""
import base64
import hashlib
import tempfile

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import AuthFailedError, InvalidACLError, NoAuthError
from kazoo.security import make_acl

from conftest import Server, free_ports, start_zookeeper, stop_zookeeper


def both(extra):
    """ZooKeeper and zkrs on the same zoo.cfg lines, as (hosts, stop) pairs."""
    zk_port, = free_ports(1)
    directory = tempfile.mkdtemp(prefix="zkrs-digest-")
    zookeeper = start_zookeeper(directory, zk_port, extra=extra)
    zkrs = Server(extra)
    return [("127.0.0.1:%d" % zk_port, lambda: stop_zookeeper(zookeeper, directory)),
            (zkrs.hosts, zkrs.stop)]


def client(hosts):
    started = KazooClient(hosts=hosts, timeout=10)
    started.start(timeout=30)
    return started


def digest_of(user_password, algorithm):
    user = user_password.split(":")[0]
    hashed = hashlib.new(algorithm, user_password.encode()).digest()
    return "%s:%s" % (user, base64.b64encode(hashed).decode())


@pytest.mark.parametrize("java_name,python_name", [
    ("SHA-256", "sha256"), ("SHA3-256", "sha3_256"), ("SHA-512", "sha512"), ("MD5", "md5"),
])
def test_the_configured_hash_makes_the_same_ids_as_zookeepers(java_name, python_name):
    super_digest = digest_of("super:supersecret", python_name)
    servers = both("DigestAuthenticationProvider.digestAlg=%s\n"
                   "DigestAuthenticationProvider.superDigest=%s\n" % (java_name, super_digest))
    seen = []
    try:
        for hosts, _ in servers:
            bob = client(hosts)
            bob.add_auth("digest", "bob:secret")
            bob.create("/bobs", b"x", acl=[make_acl("auth", "", all=True)])
            acl = [(entry.id.scheme, entry.id.id) for entry in bob.get_acls("/bobs")[0]]
            anyone = client(hosts)
            with pytest.raises(NoAuthError):
                anyone.get("/bobs")
            admin = client(hosts)
            admin.add_auth("digest", "super:supersecret")
            seen.append((acl, admin.get("/bobs")[0]))
            for session in (bob, anyone, admin):
                session.stop()
    finally:
        for _, stop in servers:
            stop()
    assert seen[0] == seen[1], seen
    assert seen[1][0] == [("digest", digest_of("bob:secret", python_name))], seen


def test_with_the_provider_off_digest_fails_as_with_zookeeper():
    servers = both("DigestAuthenticationProvider.enabled=false\n")
    seen = []
    try:
        for hosts, _ in servers:
            outcomes = []
            plain = client(hosts)
            try:
                plain.create("/d", b"", acl=[make_acl("digest", "bob:x", all=True)])
                outcomes.append("created")
            except InvalidACLError:
                outcomes.append("InvalidACL")
            bob = client(hosts)
            try:
                bob.add_auth("digest", "bob:secret")
                outcomes.append("authenticated")
            except AuthFailedError:
                outcomes.append("AuthFailed")
            seen.append(outcomes)
            for session in (plain, bob):
                session.stop()
    finally:
        for _, stop in servers:
            stop()
    assert seen[0] == seen[1] == ["InvalidACL", "AuthFailed"], seen
