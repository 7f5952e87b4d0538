"""ACME minimal: a small iSCSI Storage Array plug-in."""

osc_isa_plugins = ["acme.minimal.MinimalArray.MinimalArray"]
