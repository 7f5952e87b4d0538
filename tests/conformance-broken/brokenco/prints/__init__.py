"""BrokenCo: getStorageNames prints to standard output."""

osc_isa_plugins = ["brokenco.prints.Array.Array"]
