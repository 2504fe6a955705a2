"""What weight files say, read from their bytes without loading them (pure): pickle imports, safetensors headers."""
