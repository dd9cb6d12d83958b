"""Helpers for clusters whose brokers talk over TLS and SASL (issue 11):
certificates made with the openssl CLI in the test's tmp dir, SCRAM users
created through AlterUserScramCredentials (API 51) on a PLAINTEXT cluster
before it is switched to its secure listener, and the confluent-kafka
settings of each listener."""
import hashlib
import os
import socket
import struct
import subprocess


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


class Pki:
    """A CA, a CA nobody trusts, and certificates signed by either."""

    def __init__(self, root):
        self.root = root
        self.ca = self.make_ca("ca", "/CN=Holdfast cluster test CA")
        self.rogue_ca = self.make_ca("rogue-ca", "/CN=Somebody else's CA")

    def make_ca(self, name, subject):
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", f"{name}.key", "-out", f"{name}.pem", "-subj", subject, "-days", "30",
                cwd=self.root)
        return str(self.root / f"{name}.pem")

    def make_cert(self, name, subject, ca="ca", san="subjectAltName=IP:127.0.0.1,DNS:localhost"):
        """(certificate, key) paths; the certificate names 127.0.0.1 (what brokers dial)."""
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=self.root)
        (self.root / f"{name}.ext").write_text(san + "\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "30", "-extfile",
                f"{name}.ext", cwd=self.root)
        return str(self.root / f"{name}.pem"), str(self.root / f"{name}.key")


# ---- AlterUserScramCredentials v0 (flexible) over a raw socket --------------------------------

def _uvarint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _compact(data):
    return _uvarint(len(data) + 1) + data


def _recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


SCRAM_SHA_512 = 2


def upsert_scram_user(bootstrap, user, password, iterations=4096):
    """Creates (or replaces) `user`'s SCRAM-SHA-512 credential through one
    node of a PLAINTEXT cluster (it forwards to the controller). Returns the
    result's error code (0 = done)."""
    salt = os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    upsertion = (_compact(user.encode()) + struct.pack(">bi", SCRAM_SHA_512, iterations)
                 + _compact(salt) + _compact(salted) + b"\x00")
    body = _uvarint(1) + _uvarint(2) + upsertion + b"\x00"  # no deletions, one upsertion
    client_id = b"cluster-test"
    header = struct.pack(">hhih", 51, 0, 7, len(client_id)) + client_id + b"\x00"
    frame = header + body
    host, port = bootstrap.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=15) as s:
        s.sendall(struct.pack(">i", len(frame)) + frame)
        size = struct.unpack(">i", _recv_exact(s, 4))[0]
        response = _recv_exact(s, size)
    # correlation id, header tags (one 0 byte), throttle, results array (1 + 1), user, error code
    assert struct.unpack(">i", response[:4])[0] == 7
    at = 4 + 1 + 4 + 1
    name_length = response[at] - 1
    at += 1 + name_length
    return struct.unpack(">h", response[at:at + 2])[0]


def jaas(user, password):
    return ("org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{user}" password="{password}";')
