"""certs - throwaway X.509 material for the test servers.

make_ca_and_cert() runs the `openssl` command (argv lists, no shell) to make
a private CA, a server certificate signed by it whose subjectAltName covers
the given host names and IP addresses, and a second certificate signed by the
same CA for a host that is NOT ours ("wrong.example"), so tests can check that
the client verifies the host name and not only the chain.  EC P-256 keys:
the whole set is made in well under a second.
"""

import os
import secrets
import subprocess
import sys

CURVE = "prime256v1"
DAYS = "7"


def _openssl(*args):
    """Run openssl with an argv list; raise with its stderr on failure."""
    proc = subprocess.run(["openssl", *args], stdin=subprocess.DEVNULL,
                          capture_output=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError("openssl %s failed: %s" % (
            args[0], proc.stderr.decode("utf-8", "replace").strip()))


def _key(path):
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt",
             "ec_paramgen_curve:" + CURVE, "-out", path)
    os.chmod(path, 0o600)


def _make_ca(d):
    key = os.path.join(d, "ca.key")
    cert = os.path.join(d, "ca.pem")
    _key(key)
    _openssl("req", "-x509", "-new", "-key", key, "-sha256", "-days", DAYS,
             "-subj", "/O=bearmail tests/CN=bearmail throwaway test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             "-out", cert)
    return cert, key


def _make_leaf(d, name, cn, sans, ca, ca_key):
    """A server certificate for sans (['DNS:x', 'IP:y']) signed by the CA."""
    key = os.path.join(d, name + ".key")
    csr = os.path.join(d, name + ".csr")
    cert = os.path.join(d, name + ".pem")
    ext = os.path.join(d, name + ".ext")
    _key(key)
    _openssl("req", "-new", "-key", key, "-subj", "/CN=" + cn, "-out", csr)
    with open(ext, "w", encoding="ascii") as f:
        f.write("basicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=serverAuth\n"
                "subjectAltName=" + ",".join(sans) + "\n")
    _openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key,
             "-set_serial", "0x" + secrets.token_hex(12), "-sha256",
             "-days", DAYS, "-extfile", ext, "-out", cert)
    os.unlink(csr)
    os.unlink(ext)
    return cert, key


def make_ca_and_cert(d, hostnames=("localhost",), ips=("127.0.0.1", "::1")):
    """Make the CA and certificates in directory d (created if needed).

    Returns (ca, cert, key, wrong_cert, wrong_key): paths of the CA
    certificate, the server certificate and key for hostnames/ips, and a
    certificate and key signed by the same CA for "wrong.example" only.
    """
    os.makedirs(d, mode=0o700, exist_ok=True)
    ca, ca_key = _make_ca(d)
    sans = ["DNS:" + h for h in hostnames] + ["IP:" + i for i in ips]
    cert, key = _make_leaf(d, "server", hostnames[0] if hostnames else ips[0],
                           sans, ca, ca_key)
    wrong_cert, wrong_key = _make_leaf(d, "wrong", "wrong.example",
                                       ["DNS:wrong.example"], ca, ca_key)
    return ca, cert, key, wrong_cert, wrong_key


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: certs.py DIR")
    for p in make_ca_and_cert(sys.argv[1]):
        print(p)
