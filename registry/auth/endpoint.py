"""The token endpoint (``auth.token.server.path``), speaking both forms docker's clients use:

    GET  ?service=&scope=...&scope=...[&offline_token=true]   Basic credentials, or none for anonymous access
    POST grant_type=password (username, password[, access_type=offline]) or grant_type=refresh_token
         (refresh_token), with service and scope (several scopes separated by spaces)

The answer is ``{"token", "access_token", "expires_in", "issued_at"[, "refresh_token"]}``. Wrong credentials are
401; scopes that are not allowed are simply absent from the token, as the spec says.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from registry.auth.access import scopes_in
from registry.auth.gate import basic_credentials, quote
from registry.auth.jwt import TokenError
from registry.auth.service import TokenService
from registry.errors import ErrorCode, RegistryError, error_response

MAX_FORM_BYTES = 64 * 1024
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class _BadRequest(Exception):
    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


async def token_endpoint(request: Request) -> Response:
    service: TokenService = request.app.state.token_service
    try:
        if request.method == "POST":
            return await _post(request, service)
        return await _get(request, service)
    except _BadRequest as exc:
        return JSONResponse({"error": exc.error, "error_description": exc.description}, status_code=400)
    except RegistryError as exc:
        return error_response(exc)


def _unauthorized(service: TokenService, reason: str) -> RegistryError:
    challenge = f"Basic realm={quote(service.settings.service)}"
    return ErrorCode.UNAUTHORIZED.error({"reason": reason}, headers={"WWW-Authenticate": challenge})


def _check_service(requested: str | None, service: TokenService) -> None:
    if requested and requested != service.settings.service:
        raise _BadRequest("invalid_request", f"this token service issues tokens for {service.settings.service!r}")


def _issued(body: dict[str, object]) -> Response:
    return JSONResponse(body, headers=NO_STORE)


async def _get(request: Request, service: TokenService) -> Response:
    params = request.query_params
    _check_service(params.get("service"), service)
    user = None
    if "authorization" in request.headers:
        credentials = basic_credentials(request)
        if credentials is None or not await service.login(*credentials):
            raise _unauthorized(service, "invalid username or password")
        user = credentials[0]
    offline = params.get("offline_token", "").lower() == "true"
    return _issued(service.issue(user, scopes_in(params.getlist("scope")), offline=offline).body())


async def _form(request: Request) -> dict[str, list[str]]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise _BadRequest("invalid_request", "expected an application/x-www-form-urlencoded body")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise _BadRequest("invalid_request", "the form is too large")
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=100)
    except (UnicodeDecodeError, ValueError):
        raise _BadRequest("invalid_request", "the form is not valid") from None
    return fields


async def _post(request: Request, service: TokenService) -> Response:
    fields = await _form(request)
    form = {key: values[0] for key, values in fields.items()}
    _check_service(form.get("service"), service)
    scopes = scopes_in(fields.get("scope", []))
    grant_type = form.get("grant_type")
    if grant_type == "password":
        user, password = form.get("username", ""), form.get("password", "")
        if not user or not await service.login(user, password):
            raise _unauthorized(service, "invalid username or password")
        offline = form.get("access_type") == "offline"
        return _issued(service.issue(user, scopes, offline=offline).body())
    if grant_type == "refresh_token":
        try:
            user = service.refresh_subject(form.get("refresh_token", ""))
        except TokenError:
            raise _unauthorized(service, "invalid refresh token") from None
        return _issued(service.issue(user, scopes).body())
    raise _BadRequest("unsupported_grant_type", "expected grant_type password or refresh_token")
