"""How one task body runs, wherever it runs: its context and its operators."""
