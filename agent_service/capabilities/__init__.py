"""Implementations of the catalog's capabilities against the providers' real HTTP APIs."""

from agent_service.capabilities.base import (
    LLMSettings,
    LLMUsage,
    OutputInvalid,
    ProviderHTTP,
    ProviderRateLimited,
    ProviderRefused,
    ProviderTransient,
    ProviderUnauthorized,
    StepContext,
    StepFailed,
    StepResult,
)

__all__ = [
    "LLMSettings",
    "LLMUsage",
    "OutputInvalid",
    "ProviderHTTP",
    "ProviderRateLimited",
    "ProviderRefused",
    "ProviderTransient",
    "ProviderUnauthorized",
    "StepContext",
    "StepFailed",
    "StepResult",
]
