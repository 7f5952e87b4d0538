"""BrokenCo: list returns a dict instead of a list."""

osc_isa_plugins = ["brokenco.listdict.Array.Array"]
