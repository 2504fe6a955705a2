"""The zip format (``.mar``): its records encoded and decoded, a reader for files and for streams, a writer."""
