"""BrokenCo correct: CorrectArray unchanged; the conformance kit finds nothing wrong."""

osc_isa_plugins = ["brokenco.correct.Array.Array"]
