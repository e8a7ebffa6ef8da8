"""Costs per month: totals by month and source, and a bar chart drawn as inline SVG.

The chart's geometry is computed here so the template only places rectangles; colours
come from classes in hapex.css (the CSP allows no inline style attributes).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

MONTHS_SHOWN = 12
SOURCES = ("llm", "provider_call", "chat")
SOURCE_LABELS = {"llm": "Language model", "provider_call": "Provider calls", "chat": "Build chat"}

CHART_WIDTH = 640
CHART_HEIGHT = 220
PLOT_TOP = 24
PLOT_BOTTOM = 190
PLOT_LEFT = 8
BAR_GAP = 10


@dataclass
class MonthCosts:
    month: str  # YYYY-MM
    amount_microusd: int = 0
    events: int = 0
    calls: int = 0
    by_source: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Segment:
    source: str
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Bar:
    month: MonthCosts
    label: str
    x: float
    width: float
    label_x: float
    top: float
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    baseline: float
    bars: tuple[Bar, ...]
    maximum_microusd: int


def first_month_shown(now: datetime | None = None) -> datetime:
    """The first day (UTC) of the oldest month the page shows."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    year, month = now.year, now.month - (MONTHS_SHOWN - 1)
    while month < 1:
        year, month = year - 1, month + 12
    return datetime(year, month, 1, tzinfo=UTC)


def months(rows: Iterable[Mapping[str, Any]], now: datetime | None = None) -> list[MonthCosts]:
    """Every month shown, oldest first, with zero where nothing was spent."""
    start = first_month_shown(now)
    shown: dict[str, MonthCosts] = {}
    year, month = start.year, start.month
    for _ in range(MONTHS_SHOWN):
        key = f"{year:04d}-{month:02d}"
        shown[key] = MonthCosts(key)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    for row in rows:
        entry = shown.get(row["month"])
        if entry is None:
            continue
        amount = int(row["amount_microusd"])
        entry.amount_microusd += amount
        entry.events += int(row["events"])
        entry.calls += int(row["calls"])
        entry.by_source[row["source"]] = entry.by_source.get(row["source"], 0) + amount
    return list(shown.values())


def source_totals(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Over the months shown: amount, events and calls per source."""
    totals: dict[str, dict[str, Any]] = {}
    for row in rows:
        total = totals.setdefault(row["source"], {"source": row["source"], "amount_microusd": 0, "events": 0,
                                                  "calls": 0})
        total["amount_microusd"] += int(row["amount_microusd"])
        total["events"] += int(row["events"])
        total["calls"] += int(row["calls"])
    return sorted(totals.values(), key=lambda t: (-t["amount_microusd"], t["source"]))


_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def chart(shown: list[MonthCosts]) -> Chart:
    """Stacked bars, one per month, scaled to the most expensive month."""
    maximum = max((m.amount_microusd for m in shown), default=0)
    plot_height = PLOT_BOTTOM - PLOT_TOP
    slot = (CHART_WIDTH - 2 * PLOT_LEFT) / max(len(shown), 1)
    width = slot - BAR_GAP
    bars = []
    for index, month in enumerate(shown):
        x = PLOT_LEFT + index * slot + BAR_GAP / 2
        y = float(PLOT_BOTTOM)
        segments = []
        for source in (*SOURCES, *sorted(set(month.by_source) - set(SOURCES))):
            amount = month.by_source.get(source, 0)
            if not amount or not maximum:
                continue
            height = plot_height * amount / maximum
            y -= height
            segments.append(Segment(source, round(x, 2), round(y, 2), round(width, 2), round(height, 2)))
        label = _MONTH_NAMES[int(month.month[5:]) - 1]
        if month.month.endswith("-01") or index == 0:
            label += " " + month.month[2:4]
        bars.append(Bar(month, label, round(x, 2), round(width, 2), round(x + width / 2, 2), round(y, 2),
                        tuple(segments)))
    return Chart(CHART_WIDTH, CHART_HEIGHT, PLOT_BOTTOM, tuple(bars), maximum)


MAX_BUDGET_USD = 1_000_000
BUDGET_HOW = "Enter an amount in US dollars, like 50 or 49.99 (at most 1,000,000)."


def parse_budget(text: str) -> int:
    """A budget typed in dollars as micro-USD; ValueError with what to write instead."""
    cleaned = text.strip().removeprefix("$").replace(",", "").strip()
    if not re.fullmatch(r"\d{1,7}(\.\d{1,2})?", cleaned):
        raise ValueError(BUDGET_HOW)
    dollars, _, cents = cleaned.partition(".")
    micro = int(dollars) * 1_000_000 + int((cents or "0").ljust(2, "0")) * 10_000
    if micro <= 0 or micro > MAX_BUDGET_USD * 1_000_000:
        raise ValueError("A budget is more than 0 and at most 1,000,000 dollars; to have none, press Remove budget.")
    return micro
