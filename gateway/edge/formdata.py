"""``multipart/form-data`` bodies (image edits), parsed with the standard library.

The OpenAI SDK sends an image edit as a form: text fields plus one or more
files (``image``, ``image[]``, ``mask``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesParser

from gateway.errors import InvalidRequest


@dataclass
class Upload:
    name: str
    filename: str
    content_type: str
    data: bytes


@dataclass
class Form:
    fields: dict[str, str] = field(default_factory=dict)
    files: list[Upload] = field(default_factory=list)

    def files_named(self, *names: str) -> list[Upload]:
        return [f for f in self.files if f.name in names]


def parse_form(content_type: str, body: bytes) -> Form:
    multipart = content_type.lower().startswith("multipart/form-data")
    if not multipart or "boundary=" not in content_type:
        raise InvalidRequest("Send the image as multipart/form-data (the SDKs do this for you).")
    message: Message = BytesParser().parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\nMIME-Version: 1.0\r\n\r\n" + body
    )
    if not message.is_multipart():
        raise InvalidRequest("The form could not be read: no parts found.")
    form = Form()
    for part in message.get_payload():  # type: ignore[union-attr]
        if not isinstance(part, Message):
            continue
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is None:
            form.fields[name] = data.decode("utf-8", "replace")
        else:
            form.files.append(Upload(name, filename, part.get_content_type(), data))
    return form
