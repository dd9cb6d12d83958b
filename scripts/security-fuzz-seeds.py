#!/usr/bin/python3
"""Writes seed inputs for security_fuzz (src/server/fuzz/security_fuzz.cc) into
the directory given: well-formed SASL exchanges in the harness's input layout,
real TLS ClientHellos (from Python's ssl module, TLS 1.2 and 1.3) and a DER
certificate (from openssl). Seeds put the fuzzer next to the checks it must
not get past (a SCRAM proof of the right length, a complete ClientHello)
instead of leaving it to find the structure in a one-minute run."""
import base64
import os
import ssl
import subprocess
import sys
import tempfile


def sasl_messages(mode, choice, messages):
    out = bytes([mode, choice])
    for m in messages:
        m = m.encode() if isinstance(m, str) else m
        assert len(m) < 256
        out += bytes([len(m)]) + m
    return out


def scram_fixed_nonce(sha512, user):
    client_nonce = "c1ientN0nce"
    proof = base64.b64encode(bytes(64 if sha512 else 32)).decode()
    return sasl_messages(0, 0x20 | (1 if sha512 else 0), [
        f"n,,n={user},r={client_nonce}",
        f"c=biws,r={client_nonce}fuzz-server-nonce,p={proof}",
    ])


def client_hello(maximum):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.maximum_version = maximum
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = outgoing.read()
    size = len(hello) - 1
    return bytes([2, size & 0xFF, size >> 8]) + hello


def certificate_der():
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", os.path.join(tmp, "key.pem"), "-subj",
             "/C=NL/O=Hold\\, fast+/OU=ops/CN=broker-1", "-days", "1", "-outform", "DER",
             "-out", os.path.join(tmp, "cert.der")],
            check=True, capture_output=True)
        with open(os.path.join(tmp, "cert.der"), "rb") as f:
            return bytes([3]) + f.read()


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    seeds = {
        "plain-wrong-password": sasl_messages(0, 0x80, ["\0alice\0not-the-password"]),
        "plain-v0-unknown-user": sasl_messages(0, 0x00, ["\0mallory\0x"]),
        "scram256-fixed-nonce": scram_fixed_nonce(False, "alice"),
        "scram512-fixed-nonce": scram_fixed_nonce(True, "alice"),
        "scram512-escaped-user": scram_fixed_nonce(True, "al=2Cice=3D"),
        "scram-guided": bytes([1, 0x01, 11]) + b"guidednonce" + bytes([40, 0, 0x20]),
        "tls12-client-hello": client_hello(ssl.TLSVersion.TLSv1_2),
        "tls13-client-hello": client_hello(ssl.TLSVersion.TLSv1_3),
        "certificate": certificate_der(),
    }
    for name, data in seeds.items():
        with open(os.path.join(out, "seed-" + name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
