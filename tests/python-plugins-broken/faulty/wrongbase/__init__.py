"""Mistake: classes declared as Storage Array plug-ins that do not derive from
IStorageArrayPlugin (one derives from nothing, one is a File System plug-in)."""

osc_isa_plugins = ["faulty.wrongbase.Array.NotAPlugin",
                   "faulty.wrongbase.Array.FileSystemThing"]
