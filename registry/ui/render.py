"""Templates (Jinja2, autoescaped: every name, tag and label is text, never markup) and their filters."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

HERE = Path(__file__).parent
UNITS = ("B", "KB", "MB", "GB", "TB", "PB")


def human_size(size: int | None) -> str:
    if size is None:
        return ""
    value = float(size)
    for unit in UNITS:
        if value < 1000 or unit == UNITS[-1]:
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


def when(moment: datetime | str | None) -> str:
    if moment is None or moment == "":
        return ""
    if isinstance(moment, str):
        try:
            moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
        except ValueError:
            return str(moment)
    if moment.tzinfo is None:  # SQLite gives naive datetimes, stored as UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def short(digest: str) -> str:
    algorithm, _, encoded = digest.partition(":")
    return f"{algorithm}:{encoded[:12]}" if encoded else digest


@pass_context
def url(context: Any, route: str, **params: Any) -> str:
    request: Request = context["request"]
    return str(request.app.url_path_for(f"ui:{route}", **params))


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(size=human_size, when=when, short=short)
    env.globals["url"] = url
    return env


ENVIRONMENT = _environment()


def page(request: Request, template: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    html = ENVIRONMENT.get_template(template).render({"request": request, **context})
    headers = {"Cache-Control": "no-store", "X-Frame-Options": "DENY", "Content-Security-Policy": CSP}
    return HTMLResponse(html, status_code=status, headers=headers)


# everything from the UI's own origin: no CDN, no inline script
CSP = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
