"""BrokenCo: list returns snapshots too, labelled LUNType."""

osc_isa_plugins = ["brokenco.snapsinlist.Array.Array"]
