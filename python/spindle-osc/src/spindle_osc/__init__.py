"""Support code of spindle's Python plug-in API (``OSCPlugin``, ``OSCPluginUtils``) and of
its plug-in runner (``spindle_osc_runner``).

Plug-ins never import this package directly; they import ``OSCPlugin`` and
``OSCPluginUtils``.
"""

__version__ = "0.1.0"

#: Protocol versions the runner speaks (see docs/protocol.md in the spindle repository).
PROTOCOL_VERSIONS = (1,)
