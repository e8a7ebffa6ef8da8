"""Google Drive: the text of one file the client picked (files.get, then alt=media or files.export)."""

from __future__ import annotations

import codecs
import re
from typing import Any

import requests

from agent_service.capabilities.base import (
    OutputInvalid,
    ProviderRefused,
    ProviderTransient,
    StepContext,
    StepResult,
    path_segment,
)
from agent_service.capabilities.google_api import google_json, google_request
from shared.secret import Secret

MAX_FILE_BYTES = 5_000_000
_CHARSET = re.compile(r"charset\s*=\s*\"?([A-Za-z0-9_.:-]+)", re.IGNORECASE)
# Google's own formats have no bytes to download; Drive exports them (up to 10 MB).
EXPORTS = {
    "application/vnd.google-apps.document": "text/plain",
    "application/vnd.google-apps.spreadsheet": "text/csv",
    "application/vnd.google-apps.presentation": "text/plain",
}
TEXT_TYPES = frozenset({"application/json", "application/xml", "application/csv", "application/x-yaml",
                        "application/yaml", "application/x-ndjson", "application/rtf"})


def read_file(ctx: StepContext, token: Secret | None, data: dict[str, Any]) -> StepResult:
    """A text file or a Google Doc, Sheet or Slides deck as text; other types are refused."""
    file_path = f"drive/v3/files/{path_segment(data['file_id'], 'Drive file id')}"
    metadata = google_json(ctx, "GET", file_path, token,
                           params={"fields": "id,name,mimeType,size", "supportsAllDrives": "true"})
    if not isinstance(metadata, dict) or not isinstance(metadata.get("mimeType"), str):
        raise OutputInvalid("Google Drive answered with unexpected file metadata.")
    mime_type = metadata["mimeType"]
    if mime_type in EXPORTS:
        response = google_request(ctx, "GET", f"{file_path}/export", token,
                                  params={"mimeType": EXPORTS[mime_type]}, stream=True)
    elif mime_type.startswith("text/") or mime_type in TEXT_TYPES:
        if _declared_size(metadata) > MAX_FILE_BYTES:
            raise ProviderRefused(f"The file is larger than Hapex reads ({MAX_FILE_BYTES // 1_000_000} MB).")
        response = google_request(ctx, "GET", file_path, token,
                                  params={"alt": "media", "supportsAllDrives": "true"}, stream=True)
    else:
        raise ProviderRefused("Hapex reads text files and Google Docs, Sheets and Slides; this file is neither.")
    content = _capped(response)
    text = content.decode(_charset(response.headers.get("Content-Type", "")), errors="replace")
    return StepResult({"name": str(metadata.get("name", "")), "mime_type": mime_type, "text": text},
                      counts={"files": 1, "bytes": len(content)})


def _capped(response: requests.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_content(chunk_size=65_536):
            size += len(chunk)
            if size > MAX_FILE_BYTES:
                raise ProviderRefused(f"The file is larger than Hapex reads ({MAX_FILE_BYTES // 1_000_000} MB).")
            chunks.append(chunk)
    except requests.RequestException:
        raise ProviderTransient("Google Drive stopped sending the file.") from None
    finally:
        response.close()
    return b"".join(chunks)


def _charset(content_type: str) -> str:
    """The declared charset, else UTF-8 (with or without a byte-order mark), as Drive exports text."""
    match = _CHARSET.search(content_type)
    if match:
        try:
            name = codecs.lookup(match.group(1)).name
        except LookupError:
            return "utf-8-sig"
        return "utf-8-sig" if name == "utf-8" else name
    return "utf-8-sig"


def _declared_size(metadata: dict[str, Any]) -> int:
    """Drive's size (a decimal string); unknown counts as zero and the download is capped anyway."""
    try:
        return int(metadata.get("size") or 0)
    except (TypeError, ValueError):
        return 0
