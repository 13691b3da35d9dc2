"""The recording layer: recorders, modes, typed values, redaction and the shared lookup."""
