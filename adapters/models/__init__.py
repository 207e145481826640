"""Model adapters. Importing this package never imports a provider SDK."""

from agentfn.adapters.models.factory import build_model, clear_model_cache
from agentfn.adapters.models.scripted import Script, ScriptedModel

__all__ = ["Script", "ScriptedModel", "build_model", "clear_model_cache"]
