"""A tiny TorchServe handler for the squeezenet-like example.

It needs no torch: it scores the request body against the weights shipped
in the archive and answers with a label from ``index_to_name.json``, so a
test can compute the expected answer without the server.
"""

import json
import os

_state = {}


def _load(model_dir):
    with open(os.path.join(model_dir, "squeezenet_like.bin"), "rb") as f:
        weights = f.read()
    with open(os.path.join(model_dir, "index_to_name.json"), encoding="utf-8") as f:
        labels = json.load(f)
    with open(os.path.join(model_dir, "config", "labels_extra.txt"), encoding="utf-8") as f:
        extra = f.read().strip()
    return weights, labels, extra


def predict(body, weights, labels):
    """The label index is sum(body[i] * weights[i % len(weights)]) mod len(labels)."""
    score = sum(b * weights[i % len(weights)] for i, b in enumerate(body))
    return labels[str(score % len(labels))]


def handle(data, context):
    if "model" not in _state:
        _state["model"] = _load(context.system_properties.get("model_dir"))
    if data is None:
        return None
    weights, labels, extra = _state["model"]
    answers = []
    for row in data:
        body = row.get("body") or row.get("data") or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        answers.append({"label": predict(bytes(body), weights, labels), "extra": extra})
    return answers
