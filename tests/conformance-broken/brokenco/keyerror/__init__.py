"""BrokenCo: createAccessGroups lets a KeyError out when grp_name is missing."""

osc_isa_plugins = ["brokenco.keyerror.Array.Array"]
