"""The archive formats, one folder each (zip, tar, folder), each holding its records both ways, its reader and its writer."""
