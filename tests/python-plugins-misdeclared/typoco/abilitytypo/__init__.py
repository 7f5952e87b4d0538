"""Mistake: plugin_ability misspells a key (snap_is_synch for snap_is_sync)."""

osc_isa_plugins = ["typoco.abilitytypo.Array.Array"]
