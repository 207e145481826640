"""Model adapters. Importing this package never imports a provider SDK."""

from .factory import build_model, clear_model_cache
from .scripted import Script, ScriptedModel

__all__ = ["Script", "ScriptedModel", "build_model", "clear_model_cache"]
