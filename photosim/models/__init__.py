"""The models a library can use: the bundled encoder and the library's fine-tunes."""

from .registry import ModelRegistry

__all__ = ["ModelRegistry"]
