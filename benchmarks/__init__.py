"""markit's benchmarks: pure micro-benchmarks (``test_micro.py``) and the comparison run (``compare.py``)."""
