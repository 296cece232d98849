"""Image routes (pull, push, tag, rmi, inspect, load, save): filled in by the images work; see http.py's docstring."""

from __future__ import annotations

from .router import Route

ROUTES: list[Route] = []
