"""Binary decoding: ``decode_module(bytes) -> structure.Module`` (spec chapter 5)."""

from .sections import decode_module

__all__ = ["decode_module"]
