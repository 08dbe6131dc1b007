"""Inline serving for dialers: WebSocket streams, Twilio media streams, Asterisk AudioSocket."""

from .app import ServerSettings, create_app
from .runner import BackgroundServer, serve

__all__ = ["BackgroundServer", "ServerSettings", "create_app", "serve"]
