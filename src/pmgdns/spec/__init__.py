"""The spec: YAML read with each value's line, values checked, the model, key and cert files."""
