"""The tar and tar.gz formats: a reader for files and streams, a gzip-compressed writer."""
