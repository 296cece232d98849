"""The web UI: pages over ``registry.content`` and ``registry.db``, gated by ``registry.auth``.
Importing the package imports nothing: ``registry.config_schema`` reads the section in ``registry.ui.settings``."""
