"""Mistake: the two classes of the module have different versions."""

osc_isa_plugins = ["faulty.mixedversions.First.First",
                   "faulty.mixedversions.Second.Second"]
