"""browser - plays the user's web browser for `bearmail login --browser`.

bearmail starts it as $BROWSER with the authorization URL as the last
argument.  It GETs the URL from the mock identity platform over HTTPS
(trusting only the CA in $BEARMAIL_TEST_CA), does not follow the 302 by
itself but checks it, then behaves like a browser at the loopback redirect:
first an idle speculative connection (as Chrome's preconnect), a
/favicon.ico request, a POST and an oversized request (which must be
refused), then the redirect itself.  What it saw goes to the
--out file as JSON (the test reads it):

  {"authorize_status", "location", "code", "state", "callback_status",
   "callback_body", "favicon_status", "post_status", "big_status",
   "argv_url", "error"}

--mode: normal | tamper-state (change the state in the redirect before
following it) | wrong-redirect (send the code to another path) |
no-preconnect.
"""

import argparse
import http.client
import json
import os
import socket
import ssl
import sys
import traceback
import urllib.parse


def fetch_authorize(url, ca):
    """GET the authorization URL without following the redirect."""
    u = urllib.parse.urlsplit(url)
    ctx = ssl.create_default_context(cafile=ca)
    conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx,
                                       timeout=10)
    try:
        conn.request("GET", u.path + "?" + u.query)
        r = conn.getresponse()
        r.read()
        return r.status, r.getheader("Location")
    finally:
        conn.close()


def get_loopback(url, timeout=10):
    """(status, body) of a plain-HTTP GET on the loopback listener."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        target = u.path or "/"
        if u.query:
            target += "?" + u.query
        conn.request("GET", target, headers={
            "User-Agent": "Mozilla/5.0 (bearmail test browser)",
            "Accept": "text/html"})
        r = conn.getresponse()
        return r.status, r.read().decode("utf-8", "replace")
    finally:
        conn.close()


def raw_status(u, request):
    """The status code the listener answers to raw request bytes."""
    with socket.create_connection((u.hostname, u.port), timeout=10) as s:
        try:
            s.sendall(request)
        except OSError:
            pass
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    parts = data.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


def tamper(location, mode):
    u = urllib.parse.urlsplit(location)
    q = urllib.parse.parse_qsl(u.query, keep_blank_values=True)
    if mode == "tamper-state":
        q = [(k, v + "x" if k == "state" else v) for k, v in q]
    path = "/elsewhere" if mode == "wrong-redirect" else u.path
    return urllib.parse.urlunsplit((u.scheme, u.netloc, path,
                                    urllib.parse.urlencode(q), ""))


def run(args, seen):
    status, location = fetch_authorize(args.url, os.environ.get(
        "BEARMAIL_TEST_CA"))
    seen.update(authorize_status=status, location=location)
    if status != 302 or not location:
        return
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
    seen.update(code=q.get("code"), state=q.get("state"))
    u = urllib.parse.urlsplit(location)
    idle = None
    if args.mode != "no-preconnect":
        idle = socket.create_connection((u.hostname, u.port), timeout=10)
        seen["favicon_status"] = get_loopback(
            "http://%s/favicon.ico" % u.netloc)[0]
        seen["post_status"] = raw_status(u, b"POST /?code=x&state=y "
                                         b"HTTP/1.1\r\nHost: x\r\n"
                                         b"Content-Length: 0\r\n\r\n")
        seen["big_status"] = raw_status(u, b"GET / HTTP/1.1\r\nX-Big: " +
                                        b"a" * 9000 + b"\r\n\r\n")
    try:
        seen["callback_status"], seen["callback_body"] = get_loopback(
            tamper(location, args.mode))
    finally:
        if idle is not None:
            idle.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--mode", default="normal",
                    choices=["normal", "tamper-state", "wrong-redirect",
                             "no-preconnect"])
    ap.add_argument("url")
    args = ap.parse_args()
    seen = {"argv_url": args.url, "error": None}
    try:
        run(args, seen)
    except Exception:  # noqa: BLE001 - the test reads what went wrong
        seen["error"] = traceback.format_exc()
    tmp = args.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(seen, f)
    os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
