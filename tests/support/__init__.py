"""What the tests share: settings, waiting, processes, tokens, draining and databases."""
