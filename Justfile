# markit's tasks. `just --list` shows them.

# every test: unit, CLI, real-tool comparisons and the TorchServe end-to-end run
test:
    python -m pytest -q

# only the end-to-end tests against the real TorchServe server
e2e:
    python -m pytest -q -m e2e tests/e2e

# quick tests: no outside tools, no server
unit:
    python -m pytest -q -m "not e2e and not realtools"

# comparison benchmark: markit vs cp, cat, sha256, unzip, tar, torch-model-archiver (SIZE in GiB)
bench size="2":
    python benchmarks/compare.py --size-gib {{size}}
    python benchmarks/remote.py

# remote archives against local S3 and HTTP servers: create to S3 vs s3fs put, inspect/verify over HTTP
bench-remote size="1" inspect="8":
    python benchmarks/remote.py --size-gib {{size}} --inspect-gib {{inspect}}

# pure micro-benchmarks (planning, manifest, headers)
microbench:
    python -m pytest -q benchmarks --benchmark-enable

# rebuild the archives made by the real torch-model-archiver and MMS model-archiver
fixtures:
    python tests/fixtures/make_real.py

# archive the example model
example:
    markit create --model-name squeezenet-like --model-path examples/squeezenet-like --handler handler:handle -f

lint:
    ruff check markit tests benchmarks
    mypy
