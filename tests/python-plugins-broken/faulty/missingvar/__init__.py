"""Mistake: the class does not set plugin_ability."""

osc_isa_plugins = ["faulty.missingvar.Array.Array"]
