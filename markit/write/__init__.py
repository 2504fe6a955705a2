"""The write side: inputs on disk -> snapshot -> plan -> writer -> sink (``create``)."""
