"""End-to-end tests that load archives into a real TorchServe (see torchserve.py)."""
