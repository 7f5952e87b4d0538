"""Plug-ins whose class variables the runner loads but spindle refuses (so they are found,
then skipped with the reason): `spindle plugin call` and `conformance` must quote it."""
