"""Plug-in modules with one mistake each, for testing how spindle reports them."""
