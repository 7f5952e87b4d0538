"""ACME rich: a SAN and iSCSI Storage Array plug-in with clones, QoS and asynchronous splits."""

osc_isa_plugins = ["acme.rich.RichArray.RichArray"]
