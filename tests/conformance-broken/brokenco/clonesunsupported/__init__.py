"""BrokenCo: declares clone UNSUPPORTED, yet clone works."""

osc_isa_plugins = ["brokenco.clonesunsupported.Array.Array"]
