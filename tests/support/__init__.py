"""Helpers the tests share: tool virtualenvs, the example model's path."""
