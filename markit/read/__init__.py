"""The read side: source -> members -> data pass -> checks -> report (``inspect``, ``verify``, ``unpack``)."""
