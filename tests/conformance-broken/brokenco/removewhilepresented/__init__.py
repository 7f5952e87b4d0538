"""BrokenCo: remove deletes an element that is still presented."""

osc_isa_plugins = ["brokenco.removewhilepresented.Array.Array"]
