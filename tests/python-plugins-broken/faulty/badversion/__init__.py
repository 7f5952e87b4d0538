"""Mistake: plugin_version lacks the release number."""

osc_isa_plugins = ["faulty.badversion.Array.Array"]
