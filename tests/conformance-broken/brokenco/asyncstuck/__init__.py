"""BrokenCo: createSnap is asynchronous and its progress never reaches 100."""

osc_isa_plugins = ["brokenco.asyncstuck.Array.Array"]
