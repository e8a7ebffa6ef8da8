"""Google Sheets: read a range and append rows (spreadsheets.values.get and .append)."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from agent_service.capabilities.base import OutputInvalid, StepContext, StepResult, path_segment
from agent_service.capabilities.google_api import api_root, google_json
from shared.secret import Secret

SHEETS_ROOT = "https://sheets.googleapis.com"


def _values_url(ctx: StepContext, data: dict[str, Any]) -> str:
    spreadsheet = path_segment(data["spreadsheet_id"], "spreadsheet id")
    # A1 ranges hold '!' and ':', which must be encoded inside the path segment.
    return f"{api_root(ctx, SHEETS_ROOT)}/v4/spreadsheets/{spreadsheet}/values/{path_segment(data['range'], 'range')}"


def read(ctx: StepContext, token: Secret | None, data: dict[str, Any]) -> StepResult:
    """The cells of one range, row by row, as the sheet displays them."""
    answer = google_json(ctx, "GET", _values_url(ctx, data), token,
                         params={"majorDimension": "ROWS", "valueRenderOption": "FORMATTED_VALUE"})
    if not isinstance(answer, dict):
        raise OutputInvalid("Google Sheets answered with an unexpected range.")
    rows = answer.get("values", [])  # absent when the range is empty
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise OutputInvalid("Google Sheets answered with an unexpected range.")
    return StepResult({"rows": rows}, counts={"rows": len(rows), "cells": sum(len(row) for row in rows)})


def append(ctx: StepContext, token: Secret | None, data: dict[str, Any]) -> StepResult:
    """New rows after the table in the range.

    valueInputOption=RAW stores every value as typed, so text from an email that starts with
    '=' stays text instead of becoming a formula. Sheets has no idempotency key for append;
    the run engine never re-runs a step recorded as done.
    """
    rows = [[_cell(value) for value in row] for row in data["rows"]]
    answer = google_json(ctx, "POST", _values_url(ctx, data) + ":append", token,
                         params={"valueInputOption": "RAW", "insertDataOption": "INSERT_ROWS"},
                         json={"majorDimension": "ROWS", "values": rows})
    updates = answer.get("updates") if isinstance(answer, dict) else None
    updated_rows = updates.get("updatedRows", 0) if isinstance(updates, dict) else None
    if not isinstance(updated_rows, int):
        raise OutputInvalid("Google Sheets answered without the number of rows it appended.")
    return StepResult({"updated_rows": updated_rows}, counts={"rows": updated_rows})


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
