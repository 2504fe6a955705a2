"""Bytes moved once: checksums, deflate, read buffers, and the one data pass every command uses."""
