"""A response whose body the server sends from a file with sendfile(2) (the ASGI ``http.response.zerocopysend``
extension, which ``registry.protocol`` gives plain-TCP connections)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import BinaryIO

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from registry.protocol import ZEROCOPY


class SendfileResponse(Response):
    media_type = "application/octet-stream"

    def __init__(self, file: BinaryIO, offset: int, count: int, status_code: int, headers: Mapping[str, str]) -> None:
        super().__init__(status_code=status_code, headers=headers)
        self.file, self.offset, self.count = file, offset, count

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            await send({"type": ZEROCOPY, "file": self.file.fileno(), "offset": self.offset, "count": self.count})
        finally:
            await asyncio.to_thread(self.file.close)
