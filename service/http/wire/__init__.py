"""Wire formats: reading and strictly parsing JSON bodies, X straight into an array, .npy parts, encoding answers."""
