"""The workflow plan: a ``.war`` as torch-workflow-archiver makes it, decided (and its spec checked) in advance.

Pure: :func:`make_workflow_plan` takes the request, the scanned inputs (``--spec-file``,
``--handler``, ``--extra-files``) and the spec's and handler's bytes, and returns a
:class:`~markit.write.plan.Plan` whose manifest is ``WAR-INF/MANIFEST.json``. A spec with
an error (:func:`markit.model.workflow.check_spec`) stops the plan before anything is written.
"""

from __future__ import annotations

from collections.abc import Sequence

from markit.errors import InputError, UsageError
from markit.model.manifest import created_on
from markit.model.spec import check_spec
from markit.model.workflow import WAR_DIR, build_workflow_manifest, check_workflow_name
from markit.write.plan import COMPRESSIONS, Exclusion, Plan, Request, entries_of, place_inputs
from markit.write.snapshot import Input

__all__ = ["WORKFLOW_FORMATS", "make_workflow_plan"]

# A .war is a zip: TorchServe unzips a workflow archive whatever else it holds (no tgz, no folder).
WORKFLOW_FORMATS = ("default", "zip-store")


def _check_request(request: Request) -> None:
    check_workflow_name(request.model_name)
    if request.archive_format not in WORKFLOW_FORMATS:
        raise UsageError(f"--archive-format {request.archive_format} (given, or from -o's name): a workflow archive"
                         f" (.war) is a zip; expected one of {', '.join(WORKFLOW_FORMATS)}")
    if request.compression not in COMPRESSIONS:
        raise UsageError(f"--compression {request.compression}: expected one of {', '.join(COMPRESSIONS)}")
    if request.compression != "auto" and request.archive_format != "default":
        raise UsageError(f"--compression {request.compression} applies to --archive-format default only")
    if not request.handler.endswith(".py"):
        raise InputError(f"--handler {request.handler}: a workflow's handler is a .py file (its functions are"
                         " the DAG's function nodes)")


def _given(inputs: Sequence[Input], flag: str) -> str:
    return next(item.given for item in inputs if item.flag == flag)


def make_workflow_plan(request: Request, inputs: Sequence[Input], spec: bytes, handler: bytes) -> Plan:
    """Decide every file of the ``.war``, after checking *spec* (the spec file's bytes) against *handler*'s.

    :class:`InputError` naming every error of the spec, each with its line; warnings (a model url that
    is neither an absolute URL nor a plain ``.mar`` name) become the plan's notes.
    """
    _check_request(request)
    spec_name = _given(inputs, "--spec-file").replace("\\", "/").rsplit("/", 1)[-1]
    handler_name = _given(inputs, "--handler").replace("\\", "/").rsplit("/", 1)[-1]
    issues = check_spec(spec, spec_name, handler, handler_name)
    errors = [issue.message for issue in issues if not issue.warning]
    if errors:
        raise InputError(f"--spec-file {_given(inputs, '--spec-file')}: " + "; ".join(errors))
    taken, exclusions = place_inputs(request, inputs)
    for name in [name for name in taken if name.split("/", 1)[0] == WAR_DIR]:
        source, origin = taken.pop(name)
        exclusions.append(Exclusion(name, source.path, origin, f"{WAR_DIR}/ is reserved: markit writes the"
                                    " archive's own"))
    generated = request.epoch if request.epoch is not None else request.now
    manifest = build_workflow_manifest(
        workflow_name=request.model_name, spec_file=spec_name, handler=handler_name,
        created=created_on(generated, utc=request.epoch is not None), archiver_version=request.archiver_version,
    )
    notes = tuple(f"--spec-file: {issue.message}" for issue in issues if issue.warning)
    return Plan(request.model_name, request.archive_format, entries_of(request, taken), tuple(exclusions),
                manifest, generated, notes, compression=request.compression, kind="workflow")
