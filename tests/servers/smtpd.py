"""smtpd - an SMTP submission server shaped like Exchange Online, on aiosmtpd.

What it speaks (RFC 5321 SMTP, RFC 3207 STARTTLS, RFC 4954 AUTH, RFC 2920
PIPELINING, RFC 3461 DSN, RFC 3030 CHUNKING/BINARYMIME, RFC 6531 SMTPUTF8,
RFC 1870 SIZE, RFC 2034 ENHANCEDSTATUSCODES, RFC 7628 OAUTHBEARER, and
Microsoft's XOAUTH2):
  * EHLO lists what smtp.office365.com lists, in its order; AUTH LOGIN
    XOAUTH2 only after STARTTLS.  Mail needs TLS and AUTH: otherwise
    "530 5.7.57 Client not authenticated to send mail".
  * XOAUTH2 and OAUTHBEARER (initial response or after 334): the bearer
    token must be a JWT from idp.py (HS256 with STATE/jwt.secret), unexpired,
    for Outlook with SMTP.Send, and user= must be its upn; else
    "535 5.7.3 Authentication unsuccessful".  LOGIN (basic) always fails
    with 5.7.139, as on tenants where basic auth is off.
  * MAIL/RCPT accept the DSN, SIZE, BODY, SMTPUTF8 and AUTH parameters
    when the matching extension is advertised, and refuse others (555).
Everything is recorded so that tests check the bytes on the wire: each
session is appended to STATE/sessions.jsonl as snapshots of one JSON object
(the last line with a given "id" is the newest), at connect, after each
message and at the end; each message's data, exactly as received after
dot-unstuffing (bare CR/LF kept), goes to STATE/msg-N.eml.  Client
mistakes (MAIL before AUTH, pipelining when not allowed, ...) are listed in
the session's "violations".

A JSON script (--script FILE, re-read at each connection) changes replies;
see README.md for its keys.

Run: smtpd.py --cert C --key K --state DIR [--port 0] [--script FILE]
              [--smtps-port P]
prints "READY port=NNNN" (plus " smtps_port=MMMM" with --smtps-port).
"""

import argparse
import asyncio
import base64
import binascii
import collections
import email.utils
import json
import os
import re
import secrets
import ssl
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import idp  # noqa: E402  (the JWT helpers and the shared secret)
from aiosmtpd.smtp import SMTP  # noqa: E402

HOSTNAME = "BM0PR01MB0001.outlook.office365.test"
DEFAULT_SIZE = 37748736
REPLY_OK_AUTH = "235 2.7.0 Authentication successful"
REPLY_BAD_AUTH = "535 5.7.3 Authentication unsuccessful"
REPLY_BASIC_OFF = ("535 5.7.139 Authentication unsuccessful, basic "
                   "authentication is disabled.")
REPLY_NOT_AUTHED = "530 5.7.57 Client not authenticated to send mail"
REPLY_NO_MECH = "504 5.7.4 Unrecognized authentication type"
REPLY_UNKNOWN = "500 5.3.3 Unrecognized command"
REPLY_TOO_BIG = "552 5.3.4 Message size exceeds fixed maximum message size"
REPLY_CONN_LIMIT = ("432 4.3.2 Concurrent connections limit exceeded. Visit "
                    "https://aka.ms/concurrent_sending for more information.")
# RFC 2920: these end a pipelined group (and AUTH, RFC 4954; STARTTLS, 3207).
LAST_IN_GROUP = {"EHLO", "HELO", "STARTTLS", "AUTH", "DATA", "QUIT", "NOOP",
                 "VRFY", "EXPN", "TURN"}
TLS_FREE = {"EHLO", "HELO", "STARTTLS", "QUIT", "NOOP", "RSET"}


def exchange_extensions(tls, script):
    """The EHLO keywords, in Exchange Online's order, as the script allows."""
    size = script.get("size", DEFAULT_SIZE)
    exts = ["SIZE %d" % size if size else "SIZE", "PIPELINING", "DSN",
            "ENHANCEDSTATUSCODES"]
    if not tls:
        exts.append("STARTTLS")
    if tls or script.get("auth_without_tls"):
        exts.append("AUTH " + " ".join(script.get("auth_mechs",
                                                  ["LOGIN", "XOAUTH2"])))
    exts += ["8BITMIME", "BINARYMIME", "CHUNKING", "SMTPUTF8"]
    removed = {k.upper() for k in script.get("remove_ext", [])}
    return [e for e in exts if e.split()[0].upper() not in removed]


def parse_path(arg, keyword):
    """'FROM:<a@b> X=Y' -> ('a@b', ['X=Y'], bracketed) or None if malformed."""
    if arg is None or arg[:len(keyword)].upper() != keyword:
        return None
    rest = arg[len(keyword):].lstrip(" ")
    m = re.match(r'<((?:"(?:[^"\\]|\\.)*"|[^<>"])*)>(.*)$', rest)
    if m:
        return m.group(1), m.group(2).split(), True
    m = re.match(r"(\S+)(.*)$", rest)
    if m:
        return m.group(1), m.group(2).split(), False
    return None


def check_params(params, allowed, advertised):
    """The first unacceptable parameter, or None.

    allowed maps a keyword to (the EHLO extension it needs, a regex its
    value must match or None when it takes no value).
    """
    for p in params:
        key, eq, value = p.partition("=")
        rule = allowed.get(key.upper())
        if rule is None or rule[0] not in advertised:
            return p
        if (rule[1] is None) != (not eq):
            return p
        if rule[1] is not None and not re.fullmatch(rule[1], value, re.I):
            return p
    return None


XTEXT = r"(?:[\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-F]{2})+"
MAIL_PARAMS = {
    "SIZE": ("SIZE", r"[0-9]{1,20}"),
    "BODY": ("8BITMIME", r"7BIT|8BITMIME|BINARYMIME"),
    "SMTPUTF8": ("SMTPUTF8", None),
    "RET": ("DSN", r"FULL|HDRS"),
    "ENVID": ("DSN", XTEXT),
    "AUTH": ("AUTH", r"<>|" + XTEXT),
}
RCPT_PARAMS = {
    "NOTIFY": ("DSN", r"NEVER|(?:SUCCESS|FAILURE|DELAY)"
                      r"(?:,(?:SUCCESS|FAILURE|DELAY))*"),
    "ORCPT": ("DSN", r"[A-Za-z0-9-]+;" + XTEXT),
}


def parse_xoauth2(blob):
    """(user, token) from 'user=U^Aauth=Bearer T^A^A', else None."""
    m = re.fullmatch(rb"user=([^\x01]+)\x01auth=Bearer ([^\x01 ]+)\x01\x01",
                     blob)
    if not m:
        return None
    return m.group(1).decode("utf-8", "replace"), m.group(2).decode("latin-1")


def parse_oauthbearer(blob):
    """(user or None, token) from an RFC 7628 client response, else None."""
    parts = blob.split(b"\x01")
    if len(parts) < 3 or parts[-1] != b"" or parts[-2] != b"":
        return None
    gs2 = parts[0].decode("utf-8", "replace").split(",")
    if len(gs2) < 3 or gs2[0] not in ("n", "y"):
        return None
    user = None
    if gs2[1].startswith("a="):
        user = gs2[1][2:].replace("=2C", ",").replace("=3D", "=")
    token = None
    for kv in parts[1:-2]:
        k, _, v = kv.partition(b"=")
        if k == b"auth" and v.startswith(b"Bearer "):
            token = v[len(b"Bearer "):].decode("latin-1")
    return (user, token) if token else None


class Server:
    """What the connections share: files, script, counters (one loop)."""

    def __init__(self, cert, key, state_dir, script_path=None):
        self.state_dir = state_dir
        self.script_path = script_path
        self.tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.tls.minimum_version = ssl.TLSVersion.TLSv1_2
        self.tls.load_cert_chain(cert, key)
        self.sessions = 0
        self.messages = self._last_message_number()
        self.authed = {}      # lower-case user -> connections authenticated

    def _last_message_number(self):
        n = 0
        for name in os.listdir(self.state_dir):
            m = re.fullmatch(r"msg-(\d+)\.eml", name)
            if m:
                n = max(n, int(m.group(1)))
        return n

    def script(self):
        if not self.script_path or not os.path.exists(self.script_path):
            return {}
        try:
            with open(self.script_path, encoding="utf-8") as f:
                return json.load(f)
        except (OSError, ValueError) as e:
            print("smtpd: bad script %s: %s" % (self.script_path, e),
                  file=sys.stderr, flush=True)
            return {}

    def save_message(self, data):
        self.messages += 1
        name = "msg-%d.eml" % self.messages
        tmp = os.path.join(self.state_dir, "." + name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, os.path.join(self.state_dir, name))
        return name

    def record(self, rec):
        line = json.dumps(rec) + "\n"
        with open(os.path.join(self.state_dir, "sessions.jsonl"), "a",
                  encoding="utf-8") as f:
            f.write(line)


def _recording_reader(reader, on_line):
    """Make reader call on_line(line) for every line it hands out."""
    class RecordingReader(type(reader)):
        async def readuntil(self, separator=b"\n"):
            line = await super().readuntil(separator)
            on_line(line)
            return line
    reader.__class__ = RecordingReader
    return reader


class ExchangeSMTP(SMTP):
    """One connection.  aiosmtpd runs the loop and STARTTLS; the commands
    whose replies Exchange words differently are ours."""

    line_length_limit = 65536   # the reader's limit: long AUTH lines, DATA

    def __init__(self, server, implicit_tls=False):
        self.srv = server
        self.script = server.script()
        super().__init__(server, hostname=HOSTNAME,
                         ident="Microsoft ESMTP MAIL Service ready at "
                               + email.utils.formatdate(localtime=False),
                         tls_context=server.tls, require_starttls=False,
                         auth_required=True, auth_require_tls=True,
                         enable_SMTPUTF8=True, data_size_limit=None,
                         timeout=float(self.script.get("timeout", 600)))
        self.command_size_limits = collections.defaultdict(lambda: 2048)
        self.command_size_limits["AUTH"] = 16384
        self.command_size_limit = 2048
        self.implicit_tls = implicit_tls
        self.in_data = False
        self.advertised = set()
        server.sessions += 1
        self.rec = {"id": "%d-%d-%s" % (os.getpid(), server.sessions,
                                        secrets.token_hex(3)),
                    "started": time.time(), "peer": None,
                    "tls": implicit_tls, "implicit_tls": implicit_tls,
                    "auth_user": None, "auth_mech": None, "ehlo": None,
                    "commands": [], "violations": [], "auth_failures": [],
                    "messages": [], "quit": False, "closed": False}
        self.auth_counted = None

    # ------------------------------------------------------ plumbing
    def flush(self):
        self.srv.record(self.rec)

    def violation(self, text):
        self.rec["violations"].append(text)

    def is_tls(self):
        return self.implicit_tls or self._tls_protocol is not None

    def reply(self, key, default):
        """The script's reply for key, else default."""
        return self.script.get(key) or default

    async def pause(self, what):
        delay = self.script.get("delay", {}).get(what)
        if delay:
            await asyncio.sleep(float(delay))
        await self.drip(what)

    async def drip(self, what):
        """Script "drip": {"at": what, "lines": N, "interval": S}: before
        the reply, N continuation lines of its code, S seconds apart (a
        server that holds a client with a reply that never quite ends)."""
        d = self.script.get("drip") or {}
        if d.get("at") != what:
            return
        for _ in range(int(d.get("lines", 10))):
            await self.push("250-still thinking")
            await asyncio.sleep(float(d.get("interval", 1)))

    def _client_connected_cb(self, reader, writer):
        super()._client_connected_cb(_recording_reader(reader, self.on_line),
                                     writer)

    def on_line(self, line):
        """Record a command line as received; note pipelining mistakes."""
        if self.in_data:
            return
        self.rec["commands"].append(self.redacted(line))
        if not line.endswith(b"\r\n"):
            self.violation("command line not ended by CRLF: %r" % line[:40])
        verb = line.split(b" ", 1)[0].strip().upper().decode("latin-1")
        if verb == "BDAT" or not self._reader._buffer:
            return
        if "PIPELINING" not in self.advertised:
            self.violation("pipelined %s without PIPELINING" % verb)
        elif verb in LAST_IN_GROUP or self.awaiting_auth_line:
            self.violation("%s not last in a pipelined group" % verb)

    awaiting_auth_line = False

    def redacted(self, line):
        """The line to record: AUTH responses never reach the record; the
        mechanism handler later says <ok user=...> or <bad>."""
        text = line.decode("latin-1")
        end = text[len(text.rstrip("\r\n")):]
        words = text.split()
        if self.awaiting_auth_line:
            return "<pending>" + end
        if len(words) > 2 and words[0].upper() == "AUTH":
            return "AUTH %s <bad>%s" % (words[1], end)
        return text

    def redact_last(self, text):
        """Replace the last recorded line (an AUTH response) with text."""
        cmds = self.rec["commands"]
        if cmds:
            cmds[-1] = text + cmds[-1][len(cmds[-1].rstrip("\r\n")):]

    def connection_made(self, transport):
        if self._original_transport is not None:
            self.rec["tls"] = True
            super().connection_made(transport)
            return
        super().connection_made(transport)
        self.rec["peer"] = list(transport.get_extra_info("peername") or [])[:2]
        self.flush()

    def connection_lost(self, error):
        if self.auth_counted:
            self.srv.authed[self.auth_counted] -= 1
            self.auth_counted = None
        self.rec["closed"] = True
        self.rec["ended"] = time.time()
        self.flush()
        super().connection_lost(error)

    async def _handle_client(self):
        greeting = self.script.get("greeting")
        if greeting:
            await self.pause("greeting")
            await self.push(greeting)
            self.transport.close()
            return
        await self.pause("greeting")
        await super()._handle_client()

    # ------------------------------------------------------ gates
    async def check_helo_needed(self, helo="HELO"):
        if self.session.host_name:
            return False
        self.violation("command before EHLO")
        await self.push("503 5.5.2 Send hello first")
        return True

    async def gate(self, verb):
        """True (after replying 530 5.7.57) when mail is not yet allowed."""
        if await self.check_helo_needed():
            return True
        if self.session.authenticated or not self.script.get(
                "require_auth", True):
            return False
        self.violation("%s before %s" % (verb, "AUTH" if self.is_tls()
                                         else "STARTTLS"))
        await self.push(REPLY_NOT_AUTHED)
        return True

    # ------------------------------------------------------ commands
    async def smtp_EHLO(self, hostname):
        if not hostname:
            return await self.push("501 5.5.4 Invalid domain name")
        self._set_rset_state()
        self.session.extended_smtp = True
        self.session.host_name = hostname
        exts = exchange_extensions(self.is_tls(), self.script)
        self.advertised = {e.split()[0].upper() for e in exts}
        self.rec["ehlo"] = exts
        peer = (self.session.peer or ["?"])[0]
        lines = ["%s Hello [%s]" % (self.hostname, peer)] + exts
        await self.pause("ehlo")
        for i, text in enumerate(lines):
            await self.push("250%s%s" % (" " if i == len(lines) - 1 else "-",
                                         text))

    async def smtp_HELO(self, hostname):
        if not hostname:
            return await self.push("501 5.5.4 Invalid domain name")
        self._set_rset_state()
        self.session.extended_smtp = False
        self.session.host_name = hostname
        self.advertised = set()
        peer = (self.session.peer or ["?"])[0]
        await self.push("250 %s Hello [%s]" % (self.hostname, peer))

    async def smtp_STARTTLS(self, arg):
        if "STARTTLS" not in self.advertised or self.is_tls():
            self.violation("STARTTLS not advertised")
            return await self.push(REPLY_UNKNOWN)
        await super().smtp_STARTTLS(arg)
        self.advertised = set()

    async def smtp_NOOP(self, arg):
        await self.push("250 2.0.0 OK")

    async def smtp_RSET(self, arg):
        self._set_rset_state()
        await self.push("250 2.0.0 Resetting")

    async def smtp_QUIT(self, arg):
        self.rec["quit"] = True
        self.flush()
        await self.push("221 2.0.0 Service closing transmission channel")
        self._handler_coroutine.cancel()
        self.transport.close()

    async def smtp_MAIL(self, arg):
        if await self.gate("MAIL"):
            return
        if self.envelope.mail_from is not None:
            return await self.push("503 5.5.1 Sender already specified")
        parsed = parse_path(arg, "FROM:")
        if parsed is None:
            return await self.push("501 5.5.4 Invalid arguments")
        addr, params, bracketed = parsed
        if not bracketed:
            self.violation("MAIL FROM without <>")
        bad = check_params(params, MAIL_PARAMS, self.advertised)
        if bad:
            return await self.push("555 5.5.4 Unsupported option: %s" % bad)
        size = self.script.get("size", DEFAULT_SIZE)
        for p in params:
            if p.upper().startswith("SIZE=") and size and int(p[5:]) > size:
                return await self.push(REPLY_TOO_BIG)
        status = self.mail_reply(addr)
        if status.startswith("2"):
            self.envelope.mail_from = addr
            self.envelope.mail_options = params
            self.envelope.rejected = []
        await self.pause("mail")
        await self.push(status)

    def mail_reply(self, addr):
        scripted = self.script.get("mail")
        if isinstance(scripted, dict):
            scripted = {k.lower(): v for k, v in scripted.items()}.get(
                addr.lower())
        return scripted or "250 2.1.0 Sender OK"

    async def smtp_RCPT(self, arg):
        if await self.gate("RCPT"):
            return
        if self.envelope.mail_from is None:
            return await self.push("503 5.5.2 Need mail command")
        parsed = parse_path(arg, "TO:")
        if parsed is None or not parsed[0]:
            return await self.push("501 5.5.4 Invalid arguments")
        addr, params, bracketed = parsed
        if not bracketed:
            self.violation("RCPT TO without <>")
        bad = check_params(params, RCPT_PARAMS, self.advertised)
        if bad:
            return await self.push("555 5.5.4 Unsupported option: %s" % bad)
        rcpt = {k.lower(): v for k, v in self.script.get("rcpt", {}).items()}
        status = rcpt.get(addr.lower()) or self.script.get(
            "rcpt_default") or "250 2.1.5 Recipient OK"
        if status.startswith("2"):
            self.envelope.rcpt_tos.append(addr)
            self.envelope.rcpt_options.append(params)
        else:
            self.envelope.rejected.append([addr, status])
        await self.pause("rcpt")
        await self.push(status)

    async def smtp_DATA(self, arg):
        if await self.gate("DATA"):
            return
        if arg:
            return await self.push("501 5.5.4 Invalid arguments")
        if self.envelope.mail_from is None:
            return await self.push("503 5.5.2 Need mail command")
        if not self.envelope.rcpt_tos:
            return await self.push("503 5.5.2 Need rcpt command")
        if any(p.upper() == "BODY=BINARYMIME"
               for p in self.envelope.mail_options):
            self.violation("DATA with BODY=BINARYMIME")
            return await self.push("503 5.5.2 BDAT required for BINARYMIME")
        await self.push("354 Start mail input; end with <CRLF>.<CRLF>")
        data, longest = await self.read_data()
        await self.end_message(bytes(data), "DATA", longest)

    async def read_data(self):
        """The message up to CRLF.CRLF, dot-unstuffed; and its longest line."""
        self.in_data = True
        data, frags, longest = bytearray(), [], 0
        try:
            while True:
                try:
                    part = await self._reader.readuntil(b"\r\n")
                except asyncio.LimitOverrunError as e:
                    frags.append(await self._reader.read(e.consumed))
                    continue
                if not frags and part == b".\r\n":
                    break
                line = b"".join(frags) + part
                frags = []
                longest = max(longest, len(line) - 2)
                data += line[1:] if line.startswith(b".") else line
        finally:
            self.in_data = False
        return data, longest

    async def smtp_BDAT(self, arg):
        words = (arg or "").split()
        if "CHUNKING" not in self.advertised or not 1 <= len(words) <= 2 \
                or not words[0].isdigit() or (len(words) == 2 and
                                              words[1].upper() != "LAST"):
            self.violation("bad or unadvertised BDAT")
            return await self.push(REPLY_UNKNOWN)
        chunk = await self._reader.readexactly(int(words[0]))
        if await self.gate("BDAT"):
            return
        if not self.envelope.rcpt_tos:
            return await self.push("503 5.5.2 Need rcpt command")
        buf = getattr(self.envelope, "bdat", bytearray())
        buf += chunk
        self.envelope.bdat = buf
        if len(words) == 1:
            return await self.push("250 2.0.0 %s octets received" % words[0])
        lines = bytes(buf).split(b"\r\n")
        await self.end_message(bytes(buf), "BDAT", max(map(len, lines)))

    async def end_message(self, data, how, longest):
        """Record the message and send the final reply (or drop)."""
        env, size = self.envelope, self.script.get("size", DEFAULT_SIZE)
        status = self.reply("data", "250 2.0.0 OK <%s@%s> [Hostname=%s]" % (
            secrets.token_hex(16).upper(), HOSTNAME, HOSTNAME))
        if size and len(data) > size:
            status = REPLY_TOO_BIG
        max_line = self.script.get("max_line")
        if max_line and longest > max_line:
            status = "500 5.5.0 Line too long"
        drop = bool(self.script.get("drop_after_data"))
        msg = {"mail_from": env.mail_from, "mail_options": env.mail_options,
               "rcpt_tos": env.rcpt_tos, "rcpt_options": env.rcpt_options,
               "rejected": getattr(env, "rejected", []), "via": how,
               "size": len(data), "max_line": longest,
               "data_file": self.srv.save_message(data),
               "reply": None if drop else status,
               "accepted": status.startswith("2") and not drop}
        self.rec["messages"].append(msg)
        self.flush()
        self._set_post_data_state()
        if drop:
            self.transport.close()
            return
        await self.pause("data")
        await self.push(status)

    # ------------------------------------------------------ AUTH
    async def smtp_AUTH(self, arg):
        if await self.check_helo_needed("EHLO"):
            return
        if "AUTH" not in self.advertised:
            self.violation("AUTH %s" % ("before STARTTLS" if not self.is_tls()
                                       else "not advertised"))
            return await self.push(REPLY_NO_MECH)
        if self.session.authenticated:
            return await self.push("503 5.5.2 Already authenticated")
        words = (arg or "").split()
        if not 1 <= len(words) <= 2:
            return await self.push("501 5.5.4 Invalid arguments")
        mech = MECHANISMS.get(words[0].upper())
        if mech is None:
            return await self.push(REPLY_NO_MECH)
        await mech(self, words[0].upper(), words[1] if len(words) > 1 else None)

    async def read_response(self, challenge=""):
        """Send 334 challenge; the client's decoded response (None: gave up).
        The recorded line is redacted by the caller."""
        await self.push("334 " + challenge)
        self.awaiting_auth_line = True
        try:
            line = await self._reader.readline()
        finally:
            self.awaiting_auth_line = False
        return self.decode_response(line.strip())

    def decode_response(self, text):
        if text == b"*":
            return None
        if text == b"=":
            return b""
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            return False

    async def first_response(self, initial):
        """The decoded initial response, or the response to an empty 334."""
        if initial is None:
            return await self.read_response()
        return self.decode_response(initial.encode("latin-1"))

    async def mech_bearer(self, mech, initial):
        blob = await self.first_response(initial)
        if blob is None or blob is False:
            self.redact_last(("AUTH %s " % mech if initial else "") + "<bad>")
            self.rec["auth_failures"].append(
                "aborted" if blob is None else "bad base64")
            return await self.push("501 5.7.0 Authentication aborted"
                                   if blob is None else
                                   "501 5.5.2 Cannot decode response")
        parse = parse_xoauth2 if mech == "XOAUTH2" else parse_oauthbearer
        parsed = parse(blob)
        user, why = self.check_bearer(parsed)
        prefix = "AUTH %s " % mech if initial else ""
        self.redact_last(prefix + ("<ok user=%s>" % user if why is None
                                   else "<bad>"))
        if self.script.get("auth_echo"):
            return await self.push(self.echo(blob, parsed))
        if why is not None and mech == "OAUTHBEARER":
            await self.oauthbearer_error()
        await self.auth_done(mech, user, why)

    def echo(self, blob, parsed):
        """Script "auth_echo": a refusal quoting what the client sent:
        "raw" (its base64), "decoded", "token" (the bearer token alone) or
        "split" (the base64 cut in two over a multi-line reply)."""
        how = self.script["auth_echo"]
        raw = base64.b64encode(blob).decode("ascii")
        if how == "decoded":
            quoted = blob.decode("latin-1").replace("\x01", " ")
        elif how == "token":
            quoted = parsed[1] if parsed else raw
        elif how == "split":
            half = len(raw) // 2
            return "535-5.7.3 you sent %s\r\n535 5.7.3 and %s" % (
                raw[:half], raw[half:])
        else:
            quoted = raw
        return "535 5.7.3 Authentication unsuccessful: you sent %s" % quoted

    async def oauthbearer_error(self):
        """RFC 7628 s3.2.2: a JSON error challenge, the client answers ^A."""
        err = base64.b64encode(json.dumps(
            {"status": "invalid_token", "schemes": "bearer",
             "scope": "https://outlook.office.com/SMTP.Send"}).encode())
        resp = await self.read_response(err.decode("ascii"))
        self.redact_last("<oauthbearer error ack%s>" % (
            "" if resp == b"\x01" else " MALFORMED"))

    def check_bearer(self, parsed):
        """(user, None) when the token is good, else (user, reason)."""
        if parsed is None:
            return None, "malformed client response"
        user, token = parsed
        claims = idp.jwt_verify(token, idp.load_secret(self.srv.state_dir))
        if claims is None:
            return user, "invalid, expired or foreign token"
        if "upn" in claims:
            user = user or claims["upn"]
            if claims.get("aud") not in (idp.OUTLOOK, idp.OUTLOOK365) or \
                    "SMTP.Send" not in claims.get("scp", "").split():
                return user, "token not for SMTP.Send"
            delegates = {k.lower(): [d.lower() for d in v] for k, v in
                         self.script.get("shared", {}).items()}
            if user.lower() != claims["upn"].lower() and claims["upn"].lower() \
                    not in delegates.get(user.lower(), []):
                return user, "user= is not the token's upn"
            return user, None
        if claims.get("aud") != idp.OUTLOOK365 or \
                "SMTP.SendAsApp" not in claims.get("roles", []):
            return user, "app token without SMTP.SendAsApp"
        return user, None if user else "no user= with an app token"

    async def auth_done(self, mech, user, why):
        if why is not None:
            self.rec["auth_failures"].append(why)
        status = self.script.get("auth") or (
            REPLY_OK_AUTH if why is None else REPLY_BAD_AUTH)
        limit = self.script.get("max_connections")
        key = (user or "").lower()
        if status.startswith("2") and limit and \
                self.srv.authed.get(key, 0) >= int(limit):
            status = REPLY_CONN_LIMIT
        if status.startswith("2"):
            self.session.authenticated = True
            self.rec["auth_user"], self.rec["auth_mech"] = user, mech
            self.srv.authed[key] = self.srv.authed.get(key, 0) + 1
            self.auth_counted = key
        await self.pause("auth")
        await self.push(status)

    async def mech_login(self, mech, initial):
        """Basic auth: read both answers, never record them, refuse."""
        if initial is None:
            user = await self.read_response("VXNlcm5hbWU6")
        else:
            user = self.decode_response(initial.encode("latin-1"))
        self.redact_last(("AUTH LOGIN " if initial else "") + "<login user>")
        if user:
            await self.read_response("UGFzc3dvcmQ6")
            self.redact_last("<password>")
        self.rec["auth_failures"].append("basic authentication")
        await self.push(self.script.get("auth") or REPLY_BASIC_OFF)


MECHANISMS = {
    "XOAUTH2": ExchangeSMTP.mech_bearer,
    "OAUTHBEARER": ExchangeSMTP.mech_bearer,
    "LOGIN": ExchangeSMTP.mech_login,
}


def watch_stdin():
    """Exit when stdin reaches EOF: the test that started us is gone."""
    def run():
        while sys.stdin.buffer.read(4096):
            pass
        os._exit(0)
    threading.Thread(target=run, daemon=True).start()


async def serve(a):
    os.makedirs(a.state, exist_ok=True)
    srv = Server(a.cert, a.key, a.state, a.script)
    loop = asyncio.get_running_loop()
    plain = await loop.create_server(lambda: ExchangeSMTP(srv), a.host, a.port)
    ready = "READY port=%d" % plain.sockets[0].getsockname()[1]
    if a.smtps_port is not None:
        tls = await loop.create_server(lambda: ExchangeSMTP(srv, True),
                                       a.host, a.smtps_port, ssl=srv.tls)
        ready += " smtps_port=%d" % tls.sockets[0].getsockname()[1]
    with open(os.path.join(a.state, "smtpd.port"), "w", encoding="ascii") as f:
        f.write(ready + "\n")
    if a.watch_stdin:
        watch_stdin()
    print(ready, flush=True)
    await asyncio.Event().wait()


def main():
    ap = argparse.ArgumentParser(description="Exchange-shaped SMTP server")
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--state", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--smtps-port", type=int, default=None)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--script", default=None)
    ap.add_argument("--watch-stdin", action="store_true",
                    help="exit when stdin is closed")
    a = ap.parse_args()
    try:
        asyncio.run(serve(a))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
