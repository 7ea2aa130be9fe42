"""The gRPC server: thin servicers, one error-mapping interceptor, health and reflection."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

from tastemaker.rate_limited_log import RateLimitedLog
from tastemaker.services.device_bundles import DeviceBundles, bundle_chunks, parse_if_none_match
from tastemaker.services.device_decisions import DeviceDecisionIntake, report_device_decisions_response
from tastemaker.services.errors import InvalidArgument, Refused
from tastemaker.services.feedback import FeedbackService, activate_response, report_outcome_response
from tastemaker.services.home import HomeRankingService, rank_home_response
from tastemaker.services.requests import parse_activate, parse_rank_home, parse_report_outcome, parse_suggest_stickers
from tastemaker.services.security import ServerSecurity
from tastemaker.services.serving_metrics import RpcMetrics
from tastemaker.services.stickers import StickerService, suggest_stickers_response
from tastemaker.v1 import api_pb2, api_pb2_grpc

log = logging.getLogger(__name__)

SERVICE_NAMES = tuple(
    api_pb2.DESCRIPTOR.services_by_name[name].full_name for name in ("HomeRanking", "Stickers", "Feedback")
)


class HomeRankingServicer(api_pb2_grpc.HomeRankingServicer):
    def __init__(self, home: HomeRankingService) -> None:
        self._home = home

    def RankHome(self, request: api_pb2.RankHomeRequest, context: grpc.ServicerContext) -> api_pb2.RankHomeResponse:  # noqa: N802
        return rank_home_response(self._home.rank_home(parse_rank_home(request)))


class FeedbackServicer(api_pb2_grpc.FeedbackServicer):
    def __init__(self, feedback: FeedbackService, device: DeviceDecisionIntake | None = None) -> None:
        self._feedback = feedback
        self._device = device

    def ReportDeviceDecisions(  # noqa: N802
        self, request: api_pb2.ReportDeviceDecisionsRequest, context: grpc.ServicerContext
    ) -> api_pb2.ReportDeviceDecisionsResponse:
        if self._device is None:
            context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                "no sticker model on this server: device decisions are taken where TASTEMAKER_STICKER_MODEL is set",
            )
            raise AssertionError("unreachable")
        return report_device_decisions_response(self._device.report(request))

    def ReportOutcome(  # noqa: N802
        self, request: api_pb2.ReportOutcomeRequest, context: grpc.ServicerContext
    ) -> api_pb2.ReportOutcomeResponse:
        outcome = parse_report_outcome(request, self._feedback.reward_range)
        return report_outcome_response(self._feedback.report_outcome(outcome))

    def Activate(  # noqa: N802
        self, request: api_pb2.ActivateRequest, context: grpc.ServicerContext
    ) -> api_pb2.ActivateResponse:
        return activate_response(self._feedback.report_outcome(parse_activate(request)))


class StickersServicer(api_pb2_grpc.StickersServicer):
    def __init__(self, stickers: StickerService | None = None) -> None:
        self._stickers = stickers
        self._device = DeviceBundles(stickers.device_bundle_path if stickers is not None else lambda: None)

    def SuggestStickers(  # noqa: N802
        self, request: api_pb2.SuggestStickersRequest, context: grpc.ServicerContext
    ) -> api_pb2.SuggestStickersResponse:
        parsed = parse_suggest_stickers(request)  # a bad request is INVALID_ARGUMENT on every server
        if self._stickers is None:
            context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                "no sticker model on this server: train one (`tastemaker stickers train`) "
                "and set TASTEMAKER_STICKER_MODEL",
            )
            raise AssertionError("unreachable")
        return suggest_stickers_response(self._stickers.suggest_stickers(parsed))

    def GetDeviceBundle(  # noqa: N802
        self, request: api_pb2.GetDeviceBundleRequest, context: grpc.ServicerContext
    ) -> Iterator[api_pb2.DeviceBundleChunk]:
        try:
            if_none_match = parse_if_none_match(request.if_none_match)
        except InvalidArgument as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        image = self._device.current()
        if image is None:
            context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                "no device bundle beside the sticker model served here: "
                "`tastemaker stickers export-device --model DIR` writes DIR/device-bundle.zip",
            )
        assert image is not None
        yield from bundle_chunks(image, if_none_match)


@dataclass(frozen=True)
class _Undecodable:
    """What the guarded deserializer hands on for a body that is not the method's request message."""

    reason: str


class ErrorMappingInterceptor(grpc.ServerInterceptor):
    """Maps domain errors to status codes in one place: invalid fields and undecodable bodies to
    INVALID_ARGUMENT (logged at most once per 10 s, so a flood of garbage cannot flood the logs),
    unexpected errors to INTERNAL."""

    def __init__(self) -> None:
        self.bad_requests = RateLimitedLog(log)
        self.rpcs = RpcMetrics()

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        inner = handler.unary_unary
        method = handler_call_details.method
        parse = handler.request_deserializer

        def deserialize(raw: bytes) -> Any:
            try:
                return parse(raw) if parse is not None else raw
            except Exception as exc:  # random bytes, a truncated message, invalid UTF-8 in a string
                return _Undecodable(f"{type(exc).__name__}: {exc}")

        def timed(request: Any, context: grpc.ServicerContext) -> Any:
            start = time.perf_counter()
            code = "INTERNAL"  # what the caller sees when anything escapes unmapped
            try:
                response = guarded(request, context)
                code = "OK"
                return response
            finally:
                if code != "OK" and context.code() is not None:  # type: ignore[attr-defined]
                    code = context.code().name  # type: ignore[attr-defined]
                self.rpcs.observe(method, code, time.perf_counter() - start)

        def guarded(request: Any, context: grpc.ServicerContext) -> Any:
            if isinstance(request, _Undecodable):
                self.bad_requests.warning("%s: undecodable request body (%s)", method, request.reason)
                context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT, f"the request body is not a valid message: {request.reason}"
                )
            try:
                return inner(request, context)
            except InvalidArgument as exc:
                self.bad_requests.warning("%s: invalid argument: %s", method, exc)
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            except Refused as exc:
                self.bad_requests.warning("%s: refused: %s", method, exc)
                code = grpc.StatusCode.FAILED_PRECONDITION if exc.expired else grpc.StatusCode.PERMISSION_DENIED
                context.abort(code, str(exc))
            except Exception as exc:
                if context.code() is not None:  # the servicer already aborted with a status
                    raise
                log.exception("%s failed", method)
                context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}")

        return grpc.unary_unary_rpc_method_handler(
            timed,
            request_deserializer=deserialize,
            response_serializer=handler.response_serializer,
        )


#: grpc.reflection.v1 is v1alpha under a new package name, message for message (grpcio-reflection
#: ships only v1alpha): the same servicer answers both, so clients of either version work.
REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"


def _enable_reflection(server: grpc.Server, service_names: tuple[str, ...]) -> None:
    names = (*service_names, reflection.SERVICE_NAME, REFLECTION_V1)
    servicer = reflection.ReflectionServicer(names)
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                REFLECTION_V1,
                {
                    "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
                        servicer.ServerReflectionInfo,
                        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
                        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
                    )
                },
            ),
        )
    )


class ServingServer:
    """A built, not yet started, server and its health servicer (for graceful shutdown)."""

    def __init__(
        self,
        server: grpc.Server,
        health_servicer: health.HealthServicer,
        port: int,
        interceptor: ErrorMappingInterceptor | None = None,
        security: ServerSecurity | None = None,
    ) -> None:
        self.server = server
        self.health = health_servicer
        self.port = port
        self.interceptor = interceptor or ErrorMappingInterceptor()
        self.security = security or ServerSecurity(None, None)

    def start(self) -> None:
        self.server.start()
        for name in ("", *SERVICE_NAMES):
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("gRPC server listening on port %d", self.port)

    def stop(self, grace_s: float = 5.0) -> None:
        """Report NOT_SERVING, let in-flight requests finish within `grace_s`, then stop."""
        self.health.enter_graceful_shutdown()
        self.server.stop(grace_s).wait(grace_s + 1)
        log.info("gRPC server stopped")


def build_server(
    home: HomeRankingService,
    feedback: FeedbackService,
    host: str = "127.0.0.1",
    port: int = 50051,
    max_workers: int = 16,
    max_message_bytes: int = 4 * 1024 * 1024,
    stickers: StickerService | None = None,
    reuse_port: bool = False,
    security: ServerSecurity | None = None,
    device_decisions: DeviceDecisionIntake | None = None,
) -> ServingServer:
    """The server, bound but not started. `reuse_port`: share the port with sibling processes
    (`serve --workers N`; the kernel spreads connections over them); off, a second server on a
    taken port fails loudly instead of silently sharing the traffic."""
    interceptor = ErrorMappingInterceptor()
    security = security or ServerSecurity(None, None)
    interceptors: list[grpc.ServerInterceptor] = [interceptor]  # first: it times and maps every call
    if security.auth is not None:
        interceptors.append(security.auth)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc"),
        interceptors=interceptors,
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.so_reuseport", int(reuse_port)),
        ],
    )
    api_pb2_grpc.add_HomeRankingServicer_to_server(HomeRankingServicer(home), server)
    api_pb2_grpc.add_FeedbackServicer_to_server(FeedbackServicer(feedback, device_decisions), server)
    api_pb2_grpc.add_StickersServicer_to_server(StickersServicer(stickers), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    _enable_reflection(server, (*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name))
    try:
        if security.certificates is not None:
            bound = server.add_secure_port(f"{host}:{port}", security.certificates.credentials())
        else:
            bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError as exc:
        raise OSError(f"could not bind the gRPC port {host}:{port} (in use?): {exc}") from exc
    if bound == 0:
        raise OSError(f"could not bind the gRPC port {host}:{port} (in use?)")
    return ServingServer(server, health_servicer, bound, interceptor, security)
