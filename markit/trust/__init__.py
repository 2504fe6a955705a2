"""Trust: signatures over an archive's entries in the OpenSSF Model Signing (OMS) format.

``oms`` is the only module that touches the ``model-signing`` library (the ``markit[sign]`` extra);
``compare`` holds the pure checks of an archive's digests against what a signature lists; ``sign``
and ``check`` are ``markit sign`` and ``markit verify --signature``, each reading the archive once
through :func:`markit.read.verify.read_archive`.
"""
