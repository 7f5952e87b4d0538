"""BrokenCo: createSnap is asynchronous and never finishes; the snapshot it is making cannot
be removed at the first try."""

osc_isa_plugins = ["brokenco.asyncstuckbusy.Array.Array"]
