"""Command-line tools a user runs: `python -m scripts.<name>` from the repository root."""
