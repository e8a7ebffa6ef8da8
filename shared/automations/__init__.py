"""Automations as data: a trigger and ordered steps over the capability catalog."""

from shared.automations.definition import (
    AutomationSchema,
    InvalidAutomation,
    load_automation,
    next_fire_time,
    resolve_step_input,
)

__all__ = ["AutomationSchema", "InvalidAutomation", "load_automation", "next_fire_time", "resolve_step_input"]
