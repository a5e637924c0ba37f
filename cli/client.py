"""The CLI's HTTP client: canonical msgpack answers, signed reads, clear errors.

Every GET asks for ``Accept: application/msgpack`` and decodes the answer with
the strict canonical decoder, so the proofs, headers and certificates the CLI
checks are exactly the bytes that were hashed and signed (no hex/JSON round
trip). One keep-alive connection per client; a connection that the node closed
is reopened once. Anything that goes wrong becomes a :class:`NodeError` whose
message says what to do: the node is not reachable, it refused the request
(its error code and message), or its answer is not what a CityLedger node sends.

Over HTTPS the node's certificate is pinned: ``--pin sha256:HEX`` (``cityledger node
tls-fingerprint`` prints it) or ``--cacert FILE`` (the node's ``tls_cert.pem``). A
node's certificate is issued by its validator key, not by a CA the system knows, so
without a pin only a certificate the system trusts is accepted. The pin is checked
right after the TLS handshake, before the request is sent.
"""

from __future__ import annotations

import hashlib
import http.client
import ssl
import time
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

from ledger.crypto import PrivateKey
from ledger.encoding import Value, decode, encode
from ledger.errors import DecodeError, LedgerError
from ledger.tx import Transaction
from node.api.auth import sign_request
from node.api.waits import NOT_NOW, error_code, retry_after_s

MSGPACK = "application/msgpack"
DEFAULT_NODE = "http://127.0.0.1:8080"
MAX_ANSWER = 64 * 1024 * 1024
PIN_PREFIX = "sha256:"
# How long a submission keeps coming back to a node that says "not now" (429 overloaded,
# mempool_full, ...), each time after the wait the node asks for.
SUBMIT_PATIENCE_S = 20.0
# The pin given on the command line (--pin or --cacert, see node_option): one per process.
PINNED: dict[str, bytes] = {}


class NodeError(LedgerError):
    """The node could not be reached, refused the request, or answered nonsense."""

    code = "node"

    def __init__(self, message: str, *, status: int | None = None, api_code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.api_code = api_code


def system_ms() -> int:
    """The wall clock in milliseconds: the CLI's clock for signed reads and answers' age."""
    return time.time_ns() // 1_000_000


class NodeClient:
    """A client of one node's ``/v1`` API."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 15.0,
        key: PrivateKey | None = None,
        chain_id: str | None = None,
        clock: Callable[[], int] = system_ms,
        pin: bytes | None = None,
    ) -> None:
        """``pin``: the SHA-256 fingerprint the node's HTTPS certificate must have
        (default: the one given on the command line, if any)."""
        parsed = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise NodeError(f"--node must be an http(s) URL like {DEFAULT_NODE}, got {url!r}")
        self.url = f"{parsed.scheme}://{parsed.netloc}"
        self._scheme = parsed.scheme
        self._host = parsed.hostname
        self._port = parsed.port
        self._base = parsed.path.rstrip("/")
        self.timeout_s = timeout_s
        self.key = key
        self._chain_id = chain_id
        self._node_key: bytes | None = None
        self.clock = clock
        self.pin = pin if pin is not None else PINNED.get("sha256")
        self._conn: http.client.HTTPConnection | None = None
        self.sleep: Callable[[float], None] = time.sleep  # the waits a busy node asks for
        self.monotonic: Callable[[], float] = time.monotonic
        # told (refusal code, seconds) before each wait for a node that said "not now"
        self.on_wait: Callable[[str, float], None] | None = None

    # --- high level --------------------------------------------------------------------------

    @property
    def chain_id(self) -> str:
        """The node's chain id (asked once; needed to sign reads and transactions)."""
        return self._chain_id if self._chain_id is not None else self._ask_identity()[0]

    @property
    def node_key(self) -> bytes:
        """The node's public key (asked once): a signed read names the node it is for."""
        return self._node_key if self._node_key is not None else self._ask_identity()[1]

    def public_status(self) -> dict[str, Value]:
        """``/v1/status``, never signed: it is public, and a signed read needs the chain first."""
        status, answer = self._get("/v1/status", None, sign=False)
        if status >= 300:
            raise _refusal(status, answer, "/v1/status")
        return answer

    def clone(self) -> NodeClient:
        """Another client of the same node, key and chain (one per thread)."""
        other = NodeClient(
            self.url, timeout_s=self.timeout_s, key=self.key, chain_id=self._chain_id, pin=self.pin
        )
        other._node_key = self._node_key
        return other

    def _ask_identity(self) -> tuple[str, bytes]:
        """The node's chain id and public key, from its status (kept for later)."""
        answer = self.public_status()
        chain_id, node_key = answer.get("chain_id"), answer.get("public_key")
        if not isinstance(chain_id, str):
            raise NodeError(f"{self.url} did not say which chain it serves")
        if not isinstance(node_key, bytes) or len(node_key) != 32:
            raise NodeError(f"{self.url} did not give its public key in /v1/status")
        if self._chain_id is not None and chain_id != self._chain_id:
            raise NodeError(f"{self.url} serves chain {chain_id!r}, not {self._chain_id!r}")
        self._chain_id, self._node_key = chain_id, node_key
        return chain_id, node_key

    def get(
        self, path: str, params: Mapping[str, Any] | None = None, *, signed: bool = False
    ) -> dict[str, Value]:
        """GET ``path`` (with ``params``); the decoded answer, or :class:`NodeError`."""
        status, value = self.get_any(path, params, signed=signed)
        if status >= 300:
            raise _refusal(status, value, path)
        return value

    def get_any(
        self, path: str, params: Mapping[str, Any] | None = None, *, signed: bool = False
    ) -> tuple[int, dict[str, Value]]:
        """GET returning (status, decoded answer) for any status the node answered.

        With a key every request is signed (endpoints serving public data ignore it).
        """
        return self._get(path, params, sign=signed or self.key is not None)

    def _get(
        self, path: str, params: Mapping[str, Any] | None, *, sign: bool
    ) -> tuple[int, dict[str, Value]]:
        target = self._target(path, params)
        headers = {"Accept": MSGPACK}
        if sign:
            headers |= self._signature("GET", target, b"")
        status, content_type, body, _ = self._request("GET", target, b"", headers)
        return status, self._decode(status, content_type, body, path)

    def submit(
        self, txs: list[Transaction], *, patience_s: float = SUBMIT_PATIENCE_S
    ) -> list[dict[str, Value]]:
        """POST a batch; one result per transaction (``status`` pending or rejected).

        What the node refuses "not now" (the whole request answered 429 ``overloaded``,
        ``mempool_full``, ..., or items of the batch refused so) is sent again, in order,
        after the wait the node asks for (``Retry-After-Ms``, else ``Retry-After``), for
        as long as ``patience_s`` allows; then the node's refusal stands."""
        encoded = [tx.encode() for tx in txs]
        results: list[dict[str, Value]] = [{} for _ in txs]
        pending = list(range(len(txs)))
        deadline = self.monotonic() + patience_s
        while True:
            status, value, wait_s = self._post_txs([encoded[i] for i in pending])
            patient = self.monotonic() + wait_s <= deadline
            code = error_code(value)
            if status == 429 and code in NOT_NOW and patient:
                self._wait(str(code), wait_s)
                continue
            if status >= 300:
                raise _refusal(status, value, "/v1/txs")
            answered = value.get("results")
            if not isinstance(answered, list) or len(answered) != len(pending):
                raise NodeError(
                    f"{self.url} answered a submission without one result per transaction"
                )
            again, why = [], ""
            for i, result in zip(pending, answered, strict=True):
                if not isinstance(result, dict):
                    raise NodeError(f"{self.url} answered a submission with a malformed result")
                results[i] = result
                code = error_code(result)
                if code in NOT_NOW:
                    again.append(i)
                    why = why or str(code)
            if not again or not patient:
                return results
            pending = again
            self._wait(why, wait_s)

    def _wait(self, code: str, wait_s: float) -> None:
        if self.on_wait is not None:
            self.on_wait(code, wait_s)
        self.sleep(wait_s)

    def _post_txs(self, encoded: list[bytes]) -> tuple[int, dict[str, Value], float]:
        """One POST of ``/v1/txs``: the status, the decoded answer and the wait it asks."""
        body = encode({"txs": encoded})
        headers = {"Accept": MSGPACK, "Content-Type": MSGPACK}
        target = self._target("/v1/txs")
        status, content_type, raw, answer_headers = self._request("POST", target, body, headers)
        wait_s = retry_after_s(answer_headers, default=1.0, lo=0.05, hi=30.0)
        return status, self._decode(status, content_type, raw, "/v1/txs"), wait_s

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # --- internals ---------------------------------------------------------------------------

    def _target(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        query = {k: v for k, v in (params or {}).items() if v is not None}
        target = self._base + path
        if query:
            target += "?" + urllib.parse.urlencode(query)
        return target

    def _signature(self, method: str, target: str, body: bytes) -> dict[str, str]:
        if self.key is None:
            raise NodeError("this record is not public: give --key with a member key to sign")
        return sign_request(
            self.key, self.chain_id, self.node_key, method, target, body, self.clock()
        )

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self._scheme != "https":
                self._conn = http.client.HTTPConnection(
                    self._host, self._port, timeout=self.timeout_s
                )
            elif self.pin is None:
                self._conn = http.client.HTTPSConnection(
                    self._host, self._port, timeout=self.timeout_s
                )
            else:
                self._conn = self._pinned_connection(self.pin)
        return self._conn

    def _pinned_connection(self, pin: bytes) -> http.client.HTTPSConnection:
        """An HTTPS connection to a node whose certificate has fingerprint ``pin``
        (checked now, before anything is sent)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # the pin below is the whole check
        conn = http.client.HTTPSConnection(
            self._host, self._port, timeout=self.timeout_s, context=ctx
        )
        conn.connect()
        sock = conn.sock
        der = sock.getpeercert(binary_form=True) if isinstance(sock, ssl.SSLSocket) else None
        seen = hashlib.sha256(der or b"").digest()
        if seen != pin:
            conn.close()
            raise NodeError(
                f"{self.url} presented TLS certificate {PIN_PREFIX}{seen.hex()}, "
                f"not the pinned {PIN_PREFIX}{pin.hex()}"
            )
        return conn

    def _request(
        self, method: str, target: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, str, bytes, http.client.HTTPMessage]:
        for attempt in (0, 1):
            conn = self._connection()
            try:
                conn.request(method, target, body=body or None, headers=headers)
                response = conn.getresponse()
                data = response.read(MAX_ANSWER + 1)
                content_type = response.getheader("Content-Type", "").split(";")[0].strip()
                if response.will_close:
                    self.close()
                return response.status, content_type, data, response.headers
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if attempt:
                    raise NodeError(f"{self.url} closed the connection without answering") from None
            except ConnectionRefusedError:
                self.close()
                raise NodeError(
                    f"cannot reach a node at {self.url}: connection refused "
                    "(is it running? check --node or CITYLEDGER_NODE)"
                ) from None
            except TimeoutError:
                self.close()
                raise NodeError(f"{self.url} did not answer within {self.timeout_s:g} s") from None
            except OSError as exc:
                self.close()
                raise NodeError(
                    f"cannot reach a node at {self.url}: {exc.strerror or exc}"
                ) from None
        raise AssertionError("unreachable")

    def _decode(self, status: int, content_type: str, body: bytes, path: str) -> dict[str, Value]:
        if len(body) > MAX_ANSWER:
            raise NodeError(f"{self.url}{path}: the answer is over {MAX_ANSWER} bytes")
        if content_type != MSGPACK:
            snippet = body[:120].decode("utf-8", "replace").strip()
            raise NodeError(
                f"{self.url}{path} answered HTTP {status} with {content_type or 'no type'}, "
                f"not a CityLedger answer: {snippet!r}"
            )
        try:
            value = decode(body)
        except DecodeError as exc:
            raise NodeError(
                f"{self.url}{path}: the answer is not canonical msgpack: {exc}"
            ) from None
        if not isinstance(value, dict):
            raise NodeError(f"{self.url}{path}: the answer is not a map")
        return value


def _refusal(status: int, value: dict[str, Value], path: str) -> NodeError:
    error = value.get("error")
    if isinstance(error, dict):
        code = str(error.get("code", "error"))
        message = str(error.get("message", ""))
        if code == "signature_required":
            message = f"{path} is not public: give --key with a member key to sign the request"
        return NodeError(f"{message} ({code}, HTTP {status})", status=status, api_code=code)
    return NodeError(f"{path}: HTTP {status}", status=status)


# --- the options every networked command shares --------------------------------------------


def node_option() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--node``, and the pin of its HTTPS certificate (``--pin`` or ``--cacert``)."""
    import click

    def apply(command: Callable[..., Any]) -> Callable[..., Any]:
        command = click.option(
            "--cacert",
            type=click.Path(dir_okay=False),
            envvar="CITYLEDGER_CACERT",
            expose_value=False,
            callback=_pin_callback(certificate_pin),
            help="Pin the node's HTTPS certificate: its tls_cert.pem. Env: CITYLEDGER_CACERT.",
        )(command)
        command = click.option(
            "--pin",
            envvar="CITYLEDGER_PIN",
            expose_value=False,
            callback=_pin_callback(parse_pin),
            help="Pin the node's HTTPS certificate: sha256:HEX (`cityledger node "
            "tls-fingerprint`). Env: CITYLEDGER_PIN.",
        )(command)
        return click.option(
            "--node",
            default=DEFAULT_NODE,
            show_default=True,
            envvar="CITYLEDGER_NODE",
            help="API URL of the node to ask. Env: CITYLEDGER_NODE.",
        )(command)

    return apply


def parse_pin(text: str) -> bytes:
    """``sha256:HEX`` (64 hex digits) as the 32 bytes it names."""
    digits = text.strip().lower().removeprefix(PIN_PREFIX)
    try:
        pin = bytes.fromhex(digits)
    except ValueError:
        pin = b""
    if len(pin) != 32:
        raise NodeError(f"a pin is {PIN_PREFIX} and 64 hex digits, not {text!r}")
    return pin


def certificate_pin(path: str) -> bytes:
    """The SHA-256 fingerprint of the PEM certificate in ``path``."""
    try:
        with open(path, "rb") as f:
            der = ssl.PEM_cert_to_DER_cert(f.read().decode("ascii"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise NodeError(f"{path}: not a readable PEM certificate ({exc})") from None
    return hashlib.sha256(der).digest()


def _pin_callback(read: Callable[[str], bytes]) -> Callable[[Any, Any, str | None], None]:
    """A click callback that keeps the pin ``read`` makes of an option's value."""

    def remember(ctx: Any, param: Any, value: str | None) -> None:
        import click

        if value:
            try:
                PINNED["sha256"] = read(value)
            except NodeError as exc:
                raise click.BadParameter(exc.message) from None

    return remember


MISSING_GENESIS = (
    "--genesis is required: the chain's genesis.json, which every answer is checked "
    "against. Get it from the agency that runs the network (not from the node you ask); "
    "a local devnet has one in each node home, e.g. devnet-data/busan-0/genesis.json. "
    "Set CITYLEDGER_GENESIS=FILE to give it once for every command."
)


def genesis_option(required: bool = True) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    import click

    def need(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        if value is None and required and not ctx.resilient_parsing:
            raise click.UsageError(MISSING_GENESIS, ctx)
        return value

    return click.option(
        "--genesis",
        "genesis_path",
        type=click.Path(exists=True, dir_okay=False),
        envvar="CITYLEDGER_GENESIS",
        callback=need,
        help="The chain's genesis.json: answers are checked against its validators. "
        "Env: CITYLEDGER_GENESIS.",
    )
