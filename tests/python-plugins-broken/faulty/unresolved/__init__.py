"""Mistake: class paths that do not resolve (a misspelt class, a file that does not exist)."""

osc_isa_plugins = ["faulty.unresolved.Array.FastArray",
                   "faulty.unresolved.NoSuchFile.Thing"]
