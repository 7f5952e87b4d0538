"""Mistake: the file holding the class fails while it is imported."""

osc_isa_plugins = ["faulty.classimport.Array.Array"]
