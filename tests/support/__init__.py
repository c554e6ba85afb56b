"""Test support: tiny offline checkpoints, generated audio, server launchers."""
