"""Records, settings, errors and the shared text helpers every stage uses."""
