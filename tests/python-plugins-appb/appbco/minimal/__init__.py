"""AppB Co minimal: a plug-in module installed the way the General guide's Appendix B RPM does
it, so its vendor package's __init__.py is the Python 2 file that RPM's %post writes."""

osc_isa_plugins = ["appbco.minimal.Array.Array"]
