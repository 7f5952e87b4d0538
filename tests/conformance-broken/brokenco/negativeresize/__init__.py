"""BrokenCo: resize accepts a negative new_size."""

osc_isa_plugins = ["brokenco.negativeresize.Array.Array"]
