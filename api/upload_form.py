"""The multipart form of ``POST /documents``: spooled under the data dir, fields bounded.

Starlette's parser keeps a file part in memory up to 1 MB and then spools it to
the system's temporary folder, and caps every other field at 1 MB with a 400.
Here a file spools to ``DATA_DIR/spool/`` (unlinked at once, so nothing is left
behind by a crash), and any part, file or field, over ``RAG_API__MAX_UPLOAD_MB``
stops the parsing with 413, as the README promises for ``text``. A URL-encoded
form may take up to ``URLENCODED_FACTOR`` times that in its encoded form (one
UTF-8 byte can take three characters); the text's own size is checked by the route.

The route opts in with ``route_class=UploadRoute``; the rest of the app keeps
Starlette's parser.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from contextlib import aclosing
from pathlib import Path
from tempfile import SpooledTemporaryFile
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from python_multipart.multipart import parse_options_header
from starlette.datastructures import FormData, Headers
from starlette.exceptions import HTTPException
from starlette.formparsers import FormParser, MultiPartException, MultiPartParser

SPOOL_FOLDER = "spool"
URLENCODED_FACTOR = 3
MAX_FIELDS = 16  # the route has five; the body limit bounds their total size


class PartTooLarge(MultiPartException):
    pass


class DataDirMultiPartParser(MultiPartParser):
    """Starlette's parser with its file spool in ``spool_dir`` and one size limit for every part."""

    def __init__(
        self,
        headers: Headers,
        stream: Any,
        *,
        spool_dir: Path,
        max_part_bytes: int,
        max_files: int,
        max_fields: int,
    ) -> None:
        super().__init__(
            headers,
            stream,
            max_files=max_files,
            max_fields=max_fields,
            max_part_size=max_part_bytes,
        )
        self.spool_dir = spool_dir
        self._file_bytes = 0

    def on_headers_finished(self) -> None:
        super().on_headers_finished()
        upload = self._current_part.file
        if upload is not None:  # swap the temporary file the parent made (still empty, in memory)
            spooled: SpooledTemporaryFile[bytes] = SpooledTemporaryFile(
                max_size=self.spool_max_size, mode="w+b", dir=str(self.spool_dir)
            )
            self._files_to_close_on_error[-1].close()
            self._files_to_close_on_error[-1] = spooled
            upload.file = spooled  # type: ignore[assignment]  # a binary file, not typed as BinaryIO
            self._file_bytes = 0

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._current_part.file is not None:
            self._file_bytes += end - start
            if self._file_bytes > self.max_part_size:
                raise PartTooLarge(self._too_large())
        elif len(self._current_part.data) + end - start > self.max_part_size:
            raise PartTooLarge(self._too_large())
        super().on_part_data(data, start, end)

    def _too_large(self) -> str:
        kind = "file" if self._current_part.file is not None else "field"
        name = self._current_part.field_name or "?"
        return f"the {kind} {name!r} is larger than {self.max_part_size / 1_000_000:g} MB"


class BoundedFormParser(FormParser):
    """Starlette's URL-encoded form parser, whose oversized field is ``PartTooLarge``."""

    def on_field_data(self, data: bytes, start: int, end: int) -> None:
        if self._current_field_size + end - start > self.max_part_size:
            name = self._field_name.decode("latin-1")
            raise PartTooLarge(
                f"the field {name!r} is larger than {self.max_part_size / 1_000_000:g} MB (URL-encoded)"
            )
        super().on_field_data(data, start, end)


class UploadRequest(Request):
    """A request whose form is parsed by the parsers above."""

    async def _get_form(self, **_: Any) -> FormData:
        if self._form is not None:
            return self._form
        content_type, _options = parse_options_header(self.headers.get("Content-Type"))
        settings = self.app.state.container.settings
        limit = settings.api.max_upload_bytes
        try:
            async with aclosing(self.stream()) as stream:
                parser: MultiPartParser | FormParser
                if content_type == b"multipart/form-data":
                    spool_dir = settings.data_dir / SPOOL_FOLDER
                    spool_dir.mkdir(parents=True, exist_ok=True)
                    parser = DataDirMultiPartParser(
                        self.headers, stream, spool_dir=spool_dir, max_part_bytes=limit, max_files=1,
                        max_fields=MAX_FIELDS,
                    )  # fmt: skip
                elif content_type == b"application/x-www-form-urlencoded":
                    parser = BoundedFormParser(
                        self.headers,
                        stream,
                        max_fields=MAX_FIELDS,
                        max_part_size=URLENCODED_FACTOR * limit,
                    )
                else:
                    return FormData()
                self._form = await parser.parse()
        except PartTooLarge as exc:
            raise HTTPException(413, exc.message, headers={"connection": "close"}) from exc
        except MultiPartException as exc:
            raise HTTPException(400, exc.message) from exc
        return self._form


class UploadRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def upload_handler(request: Request) -> Response:
            return await handler(UploadRequest(request.scope, request.receive))

        return upload_handler
