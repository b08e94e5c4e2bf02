"""registry_check: checks accepted orders against the public registers."""
