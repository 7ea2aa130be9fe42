"""Who may call the server, and over what: TLS (optionally mutual) from certificate files that are
re-read when they change or on SIGHUP, without dropping connections; per-client bearer tokens with
scopes, checked by one interceptor in constant time; and the rule that a server listening beyond
loopback needs both, unless told `--insecure`.

Tokens file (`TASTEMAKER_AUTH_TOKENS_FILE`), one client per line, `#` for comments:

    # client-id   sha256(token) in hex                                              scopes
    web-home      9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08  rank,feedback

Clients send `authorization: Bearer <token>`. Scopes: `rank` (RankHome), `stickers`
(SuggestStickers), `feedback` (ReportOutcome), `admin` (everything, and reflection when it is not
open). The health service is always open (probes carry no tokens)."""

from __future__ import annotations

import contextvars
import hashlib
import hmac
import logging
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from tastemaker.services.config import ConfigError, Settings

log = logging.getLogger(__name__)

SCOPES = ("rank", "stickers", "feedback", "admin")
#: the scope each method needs
METHOD_SCOPES = {
    "/tastemaker.v1.HomeRanking/RankHome": "rank",
    "/tastemaker.v1.Stickers/SuggestStickers": "stickers",
    "/tastemaker.v1.Stickers/GetDeviceBundle": "stickers",
    "/tastemaker.v1.Feedback/ReportOutcome": "feedback",
    "/tastemaker.v1.Feedback/Activate": "feedback",
    "/tastemaker.v1.Feedback/ReportDeviceDecisions": "feedback",
}
OPEN_PREFIXES = ("/grpc.health.v1.Health/",)
REFLECTION_PREFIXES = ("/grpc.reflection.v1alpha.ServerReflection/", "/grpc.reflection.v1.ServerReflection/")
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")

#: the authenticated client of the call being served (empty when authentication is off)
current_client: contextvars.ContextVar[str] = contextvars.ContextVar("tastemaker_client", default="")


class SecurityError(ConfigError):
    """A security setting that cannot be used; the message says which and why (exit 2)."""


@dataclass(frozen=True)
class Client:
    client_id: str
    token_sha256: bytes
    scopes: frozenset[str]


def load_tokens(path: Path) -> list[Client]:
    clients = []
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise SecurityError(f"TASTEMAKER_AUTH_TOKENS_FILE {path}: {exc.strerror}") from None
    for number, line in enumerate(lines, 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 3:
            raise SecurityError(f"{path}:{number}: want `client-id sha256-hex scope[,scope...]`, got {line!r}")
        client_id, digest, scopes = parts
        try:
            raw = bytes.fromhex(digest)
        except ValueError:
            raw = b""
        if len(raw) != 32:
            raise SecurityError(f"{path}:{number}: {digest!r} is not a SHA-256 in hex (64 characters)")
        wanted = frozenset(s for s in scopes.split(",") if s)
        unknown = wanted - set(SCOPES)
        if unknown:
            raise SecurityError(f"{path}:{number}: unknown scope {sorted(unknown)[0]!r}; known: {', '.join(SCOPES)}")
        clients.append(Client(client_id, raw, wanted))
    if not clients:
        raise SecurityError(f"TASTEMAKER_AUTH_TOKENS_FILE {path}: no clients in it")
    return clients


class AuthInterceptor(grpc.ServerInterceptor):
    """No or unknown token → UNAUTHENTICATED; a token without the method's scope → PERMISSION_DENIED.
    Every stored digest is compared, each with `hmac.compare_digest`, whatever matches: the time
    taken says nothing about which token, or how much of one, was right."""

    def __init__(self, clients: list[Client], open_reflection: bool = True) -> None:
        self._clients = clients
        self._open_reflection = open_reflection
        self.refused = 0

    def _who(self, metadata: tuple[Any, ...] | None) -> Client | None:
        token = ""
        for key, value in metadata or ():
            if key == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
                token = value[len("Bearer ") :]
        digest = hashlib.sha256(token.encode()).digest()
        found = None
        for client in self._clients:
            if hmac.compare_digest(digest, client.token_sha256) and token:
                found = client
        return found

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        method = details.method
        if method.startswith(OPEN_PREFIXES) or (self._open_reflection and method.startswith(REFLECTION_PREFIXES)):
            return continuation(details)
        client = self._who(details.invocation_metadata)  # type: ignore[attr-defined]
        needed = METHOD_SCOPES.get(method, "admin")
        if client is None:
            self.refused += 1
            return _refusal(grpc.StatusCode.UNAUTHENTICATED, "a valid `authorization: Bearer <token>` is required")
        if needed not in client.scopes and "admin" not in client.scopes:
            self.refused += 1
            return _refusal(
                grpc.StatusCode.PERMISSION_DENIED, f"client {client.client_id!r} lacks the scope {needed!r}"
            )
        handler = continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler
        inner = handler.unary_unary

        def as_client(request: Any, context: grpc.ServicerContext) -> Any:
            token = current_client.set(client.client_id)
            try:
                return inner(request, context)
            finally:
                current_client.reset(token)

        return grpc.unary_unary_rpc_method_handler(
            as_client,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def _refusal(code: grpc.StatusCode, message: str) -> grpc.RpcMethodHandler:
    def refuse(request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(code, message)

    return grpc.unary_unary_rpc_method_handler(refuse)


class CertificateFiles:
    """TLS material from files, for `grpc.dynamic_ssl_server_credentials`: grpc asks before each new
    handshake; we answer with fresh material when a file changed or SIGHUP asked, else keep the
    current one. Connections already open stay as they are."""

    def __init__(self, cert: Path, key: Path, client_ca: Path | None = None) -> None:
        self.cert, self.key, self.client_ca = cert, key, client_ca
        self._seen = self._stamp()
        self._reload = threading.Event()
        self.reloads = 0
        self.configuration()  # fail now, with the file's name, if anything is unreadable

    def _paths(self) -> list[Path]:
        return [p for p in (self.cert, self.key, self.client_ca) if p is not None]

    def _stamp(self) -> tuple[float, ...]:
        try:
            return tuple(os.stat(p).st_mtime_ns for p in self._paths())
        except OSError:
            return ()

    def configuration(self) -> Any:
        try:
            pair = (self.key.read_bytes(), self.cert.read_bytes())
            roots = self.client_ca.read_bytes() if self.client_ca is not None else None
        except OSError as exc:
            raise SecurityError(f"TLS file {exc.filename}: {exc.strerror}") from None
        return grpc.ssl_server_certificate_configuration([pair], root_certificates=roots)

    def request_reload(self) -> None:
        self._reload.set()

    def fetch(self) -> Any:
        """grpc's callback: new material, or None to keep the current one."""
        stamp = self._stamp()
        if not (self._reload.is_set() or (stamp and stamp != self._seen)):
            return None
        self._reload.clear()
        try:
            configuration = self.configuration()
        except SecurityError as exc:
            log.error("keeping the current TLS certificate: %s", exc)
            return None
        self._seen = stamp
        self.reloads += 1
        log.info("TLS certificate reloaded from %s", self.cert)
        return configuration

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.dynamic_ssl_server_credentials(
            self.configuration(), self.fetch, require_client_authentication=self.client_ca is not None
        )

    def reload_on_sighup(self) -> None:
        """SIGHUP asks for a reload at the next handshake (main thread only; elsewhere a no-op)."""
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGHUP, lambda *_: self.request_reload())


def check_exposure(host: str, tls: bool, tokens: bool, insecure: bool, signed_ids: bool = True) -> None:
    """Refuse to listen beyond loopback without TLS, tokens and signed decision ids, unless
    `insecure` says so."""
    if host in LOOPBACK or insecure or (tls and tokens and signed_ids):
        return
    parts = (
        ("TLS (TASTEMAKER_TLS_CERT/_KEY)", tls),
        ("tokens (TASTEMAKER_AUTH_TOKENS_FILE)", tokens),
        ("a decision key (TASTEMAKER_DECISION_KEY or _FILE)", signed_ids),
    )
    missing = [name for name, on in parts if not on]
    listed = missing[0] if len(missing) == 1 else f"{', '.join(missing[:-1])} and {missing[-1]}"
    raise SecurityError(
        f"refusing to listen on {host} without {listed}: anyone who can reach the port could rank, report "
        "outcomes (for made-up decision ids too) and steer training; configure them, or pass --insecure "
        "(TASTEMAKER_INSECURE=1) to do it anyway"
    )


@dataclass(frozen=True)
class ServerSecurity:
    """What `build_server` needs: credentials (None: plaintext) and the auth interceptor (None: off)."""

    certificates: CertificateFiles | None
    auth: AuthInterceptor | None

    @classmethod
    def from_settings(cls, settings: Settings) -> ServerSecurity:
        certificates = None
        if settings.tls_cert:
            certificates = CertificateFiles(
                Path(settings.tls_cert),
                Path(settings.tls_key),
                Path(settings.tls_client_ca) if settings.tls_client_ca else None,
            )
        auth = None
        if settings.auth_tokens_file:
            auth = AuthInterceptor(load_tokens(Path(settings.auth_tokens_file)), settings.open_reflection)
        signed = bool(settings.decision_key or settings.decision_key_file)
        check_exposure(settings.grpc_host, certificates is not None, auth is not None, settings.insecure, signed)
        return cls(certificates, auth)
