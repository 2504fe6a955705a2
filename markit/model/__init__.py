"""The archive's own model, shared by both directions: manifest, record, names, limits, problems."""
