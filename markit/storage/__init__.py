"""Where archive bytes come from and go to: files, pipes (and, through the same shapes, remote stores)."""
