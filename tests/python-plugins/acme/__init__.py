"""ACME's storage plug-ins (samples for spindle's Python plug-in API).

Each sub-directory is one plug-in module; its __init__.py lists its classes in
osc_isa_plugins.
"""
