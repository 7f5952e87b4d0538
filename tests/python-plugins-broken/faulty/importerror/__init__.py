"""Mistake: importing the module fails (a helper needs a library that is not installed)."""

osc_isa_plugins = ["faulty.importerror.Array.Array"]

from faulty.importerror import helpers  # noqa: E402,F401
