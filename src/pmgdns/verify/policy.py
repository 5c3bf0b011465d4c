"""The MTA-STS policy (RFC 8461) as senders fetch it: over HTTPS from `mta-sts.D`, verified, bounded
in time and size, and compared with the policy `render` wrote."""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Sequence

from ..core.errors import TransportError
from ..core.libraries import quiet_import
from .session import (
    FAIL,
    OK,
    SESSION_FACTOR,
    WARN,
    Deadline,
    Finding,
    ResolveMap,
    escape,
    hostport,
    norm_name,
    quote,
    trust_store,
    verifying_context,
)

with quiet_import("checkdmarc"):
    from checkdmarc.mta_sts import (
        MTASTSPolicySyntaxError,
        mx_in_mta_sts_patterns,
        parse_mta_sts_policy,
    )

POLICY_PATH = "/.well-known/mta-sts.txt"
POLICY_MAX_BYTES = 64 * 1024  # RFC 8461 §3.3 lets senders cap the body; 64 KiB is the usual cap
# --- MTA-STS policy ----------------------------------------------------------------------------

class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to `host` whose TCP connection goes to `address` (like curl's --connect-to): the TLS
    server name, the certificate's name check and the Host header stay `host`."""

    def __init__(self, host: str, address: tuple[str, int], context: ssl.SSLContext,
                 timeout: float, deadline: Deadline) -> None:
        super().__init__(host, 443, timeout=timeout, context=context)
        self._address = address
        self._tls_context = context
        self._deadline = deadline

    def connect(self) -> None:
        sock = socket.create_connection(self._address, self.timeout)
        self._deadline.watch(sock)
        try:
            self.sock = self._tls_context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            self._deadline.release()
            sock.close()
            raise


def _get_policy(conn: _PinnedHTTPSConnection, deadline: Deadline, url: str, via: str,
                host: str, ca_file: str | None, timeout: float) -> bytes:
    resp: http.client.HTTPResponse | None = None
    try:
        conn.request("GET", POLICY_PATH, headers={"User-Agent": "pmgdns", "Accept": "text/plain"})
        resp = conn.getresponse()
        if resp.status != 200:
            location = resp.getheader("Location")
            more = f" (redirect to {quote(location)}, not followed)" if location else ""
            raise TransportError(
                f"{url}{via}: HTTP {resp.status} {escape(resp.reason)}{more}; senders accept only "
                "200 and follow no redirects (RFC 8461 §3.3)")
        ctype = resp.getheader("Content-Type")
        media = (ctype or "").split(";", 1)[0].strip().lower()
        if media != "text/plain":
            shown = quote(ctype) if ctype is not None else "none"
            raise TransportError(
                f"{url}{via}: Content-Type is {shown}; senders accept only text/plain "
                "(RFC 8461 §3.2)")
        length = resp.getheader("Content-Length")
        if length is not None and length.strip().isdigit() and int(length) > POLICY_MAX_BYTES:
            raise TransportError(f"{url}{via}: the policy is {int(length)} bytes, over the "
                                 f"{POLICY_MAX_BYTES // 1024} KiB senders read")
        body = resp.read(POLICY_MAX_BYTES + 1)
        if len(body) > POLICY_MAX_BYTES:
            raise TransportError(f"{url}{via}: the policy is over the {POLICY_MAX_BYTES // 1024} "
                                 "KiB senders read")
    except ssl.SSLCertVerificationError as e:
        raise TransportError(f"{url}{via}: certificate invalid: "
                             f"{escape(e.verify_message or str(e))} (checked against "
                             f"{trust_store(ca_file)})") from None
    except ssl.SSLError as e:
        raise TransportError(f"{url}{via}: TLS failed: {escape(e.reason or str(e))}") from None
    except ConnectionRefusedError:
        raise TransportError(f"{url}{via}: unreachable: connection refused") from None
    except TimeoutError:
        raise TransportError(f"{url}{via}: unreachable: timed out after {timeout:g} s") from None
    except socket.gaierror as e:
        raise TransportError(f"{url}: unreachable: {host} does not resolve "
                             f"({escape(str(e))})") from None
    except OSError as e:
        raise TransportError(f"{url}{via}: unreachable: {escape(str(e))}") from None
    except http.client.HTTPException as e:
        raise TransportError(f"{url}{via}: not a valid HTTP answer ({escape(repr(e))})") from None
    finally:
        # the deadline lets go before the connection closes (the response may hold it open
        # after the HTTPConnection has handed it over)
        deadline.release()
        if resp is not None:
            resp.close()
        conn.close()
    return body


def fetch_policy(domain: str, *, resolve: ResolveMap, ca_file: str | None, timeout: float = 10,
                 default_address: str | None = None) -> str:
    """GET https://mta-sts.DOMAIN/.well-known/mta-sts.txt as RFC 8461 §3.3 senders do: verified
    certificate for mta-sts.DOMAIN (system store, or only ca_file), no redirects, only 200 with
    text/plain, at most 64 KiB. Connects to the --resolve mapping for (mta-sts.DOMAIN, 443), else to
    default_address:443, else to what the system resolves. Raises TransportError."""
    host = f"mta-sts.{norm_name(domain)}"
    url = f"https://{host}{POLICY_PATH}"
    target = resolve.get((host, 443))
    if target is None:
        target = (default_address, 443) if default_address else (host, 443)
    via = "" if target == (host, 443) else f" (via {hostport(*target)})"
    context = verifying_context(ca_file, check_hostname=True)
    deadline = Deadline(SESSION_FACTOR * timeout)
    conn = _PinnedHTTPSConnection(host, target, context, timeout, deadline)
    slow = TransportError(f"{url}{via}: did not answer within {deadline.seconds:g} s in all "
                          "(it sends too slowly)")
    try:
        body = _get_policy(conn, deadline, url, via, host, ca_file, timeout)
    except TransportError:
        if deadline.expired:
            raise slow from None
        raise
    if deadline.expired:  # a body cut short at the deadline is no policy
        raise slow
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise TransportError(f"{url}{via}: the policy is not UTF-8 text") from None


def _policy_lines(text: str) -> list[tuple[str, str]]:
    """Non-empty lines as (key, value), stripped; mx values lower-cased without a trailing dot."""
    out = []
    for raw in text.replace("\r\n", "\n").split("\n"):
        if not raw.strip():
            continue
        key, _, value = raw.partition(":")
        key, value = key.strip(), value.strip()
        if key == "mx":
            value = norm_name(value)
        out.append((key, value))
    return out


def _policy_diff(served: str, rendered: str) -> list[str]:
    got, want = _policy_lines(served), _policy_lines(rendered)
    diffs: list[str] = []
    single = [k for k, _ in want if k != "mx"]
    for key in dict.fromkeys(single):
        have = [v for k, v in got if k == key]
        need = [v for k, v in want if k == key]
        if have != need:
            shown = ", ".join(quote(v) for v in have) or "missing"
            diffs.append(f"{key} is {shown}, expected {quote(need[0]) if need else 'none'}")
    have_mx = [v for k, v in got if k == "mx"]
    need_mx = [v for k, v in want if k == "mx"]
    missing = [m for m in need_mx if m not in have_mx]
    extra = [m for m in have_mx if m not in need_mx]
    if missing:
        diffs.append("missing mx: " + ", ".join(escape(m) for m in missing))
    if extra:
        diffs.append("extra mx: " + ", ".join(escape(m) for m in extra))
    known = {*single, "mx"}
    for key, value in got:
        if key not in known:
            diffs.append(f"extra line {quote(f'{key}: {value}')}")
    return diffs


def policy_checks(domain: str, served: str | None, rendered: str, nodes: Sequence[str], *,
                  fetch_error: str = "") -> list[Finding]:
    """Check the served MTA-STS policy: it parses (checkdmarc), equals the rendered one (normalised
    lines), covers every node (an `mx:` line or a matching `*.` wildcard), and uses CRLF line ends.
    served=None means it could not be fetched; fetch_error says why."""
    domain = norm_name(domain)
    url = f"https://mta-sts.{domain}{POLICY_PATH}"
    deploy = (f"serve build/mta-sts/{domain}{POLICY_PATH} (written by `pmgdns render`) at "
              f"{url}")
    if served is None:
        why = f": {fetch_error}" if fetch_error else ""
        return [Finding(FAIL, "MTA-STS policy", f"could not fetch {url}{why}", deploy)]
    try:
        parsed = parse_mta_sts_policy(served)["policy"]
    except MTASTSPolicySyntaxError as e:
        return [Finding(FAIL, "MTA-STS policy",
                        f"the served policy does not parse: {escape(str(e))}", deploy,
                        observed=escape(served))]
    out: list[Finding] = []
    diffs = _policy_diff(served, rendered)
    if diffs:
        out.append(Finding(FAIL, "MTA-STS policy",
                           "the served policy differs from the rendered one: " + "; ".join(diffs),
                           deploy + "; the _mta-sts id in DNS names the rendered policy",
                           observed=escape(served), expected=escape(rendered)))
    else:
        out.append(Finding(OK, "MTA-STS policy",
                           f"served policy equals the rendered one (mode {parsed['mode']}, "
                           f"max_age {parsed['max_age']}, {len(parsed['mx'])} mx)"))
    patterns = [norm_name(p) for p in parsed["mx"]]
    uncovered = [n for n in (norm_name(x) for x in nodes)
                 if not mx_in_mta_sts_patterns(n, patterns)]
    if uncovered:
        enforce = parsed["mode"] == "enforce"
        listed = ", ".join(escape(p) for p in patterns) or "none"
        out.append(Finding(
            FAIL if enforce else WARN, "MTA-STS mx",
            f"the policy's mx lines ({listed}) do not cover {', '.join(uncovered)}"
            + ("; enforcing senders will not deliver to it" if enforce else ""),
            deploy, observed=listed, expected=", ".join(nodes)))
    else:
        out.append(Finding(OK, "MTA-STS mx", f"covers {', '.join(norm_name(n) for n in nodes)}"))
    if "\n" in served.replace("\r\n", ""):
        out.append(Finding(
            WARN, "MTA-STS line ends",
            "the served policy has LF line ends; RFC 8461 §3.2 says CRLF-separated (most senders "
            "accept LF)", deploy + " unchanged (it has CRLF line ends; upload it in binary mode)"))
    else:
        out.append(Finding(OK, "MTA-STS line ends", "CRLF"))
    return out


def mta_sts_checks(domain: str, rendered: str, nodes: Sequence[str], *, resolve: ResolveMap,
                   ca_file: str | None, timeout: float = 10,
                   default_address: str | None = None) -> list[Finding]:
    """fetch_policy and policy_checks together: a fetch failure becomes one FAIL finding."""
    try:
        served: str | None = fetch_policy(domain, resolve=resolve, ca_file=ca_file,
                                          timeout=timeout, default_address=default_address)
        error = ""
    except TransportError as e:
        served, error = None, str(e)
    return policy_checks(domain, served, rendered, nodes, fetch_error=error)
