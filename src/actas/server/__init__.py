"""The actas server (install with ``pip install 'actas[server]'``)."""

from actas.server.app import create_app
from actas.server.instance import Instance
from actas.server.settings import Settings, load_settings

__all__ = ["Instance", "Settings", "create_app", "load_settings"]
