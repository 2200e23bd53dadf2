"""Registering handlers and loading the modules that hold them."""

from __future__ import annotations

from jobsvc.registry import Handler, HandlerRegistry, handler, load_handler_modules, registry

__all__ = ["Handler", "HandlerRegistry", "handler", "load_handler_modules", "registry"]
