"""Deliberately broken storage plug-ins for spindle's conformance kit (and one correct one)."""
