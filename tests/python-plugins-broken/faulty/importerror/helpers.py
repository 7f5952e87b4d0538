"""Talks to the array through the vendor's SDK, which is not installed."""

import faulty_array_sdk  # noqa: F401  (no such library)
