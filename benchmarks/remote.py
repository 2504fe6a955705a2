"""Remote archives against local servers: ``python benchmarks/remote.py --size-gib 1 --inspect-gib 8``.

Three cases, each against servers started here on 127.0.0.1 (moto's S3 server, and an HTTP server
that honours Range and counts what it sends):

- **create to S3**: ``markit create -o s3://...`` of a one-file checkpoint (random bytes) against
  s3fs ``put_file`` of the same archive's bytes, one stream (``max_concurrency=1``) and the same part
  size; wall and peak RSS (``/usr/bin/time``). Target: markit's throughput >= 0.8x, RSS < 128 MiB.
- **inspect of a remote .mar** of ``--inspect-gib`` (the archive is made by markit from a sparse file, then
  its zero runs are punched out with ``fallocate --dig-holes``: the same bytes, little disk) against
  ``inspect`` of the local file; the bytes and requests the HTTP server itself counted. Targets: <= 3x the
  local wall, < 4 MiB fetched.
- **verify of a remote archive** (the create case's archive, over HTTP): bytes the server sent / archive
  size. Target: one pass, <= 1.01x.

Writes ``docs/benchmarks-remote.md`` (``--out``). Medians of ``--rounds`` alternating rounds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from markit.storage.upload import part_size
from tests.support.servers import RangeServer, S3Server, clean_env, range_server, s3_server

GIB, MIB = 1 << 30, 1 << 20
PUT = """
import sys, fsspec
fs, path = fsspec.core.url_to_fs(sys.argv[2], skip_instance_cache=True)
fs.put_file(sys.argv[1], path, chunksize=int(sys.argv[3]), max_concurrency=1)
"""


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of *cmd*, from ``/usr/bin/time``; fails loudly if *cmd* does."""
    with tempfile.NamedTemporaryFile("r") as out:
        done = subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", out.name, *cmd], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)}: exit {done.returncode}: {done.stderr.decode()[-500:]}")
        wall, rss = out.read().split()[-2:]
    return float(wall), int(rss)


def markit(*args: str) -> list[str]:
    return [sys.executable, "-m", "markit", *args]


def make_model(folder: Path, size: int, *, sparse: bool) -> Path:
    model = folder / ("sparse" if sparse else "model")
    model.mkdir()
    (model / "handler.py").write_text("def handle(data, context):\n    return data\n")
    with open(model / "weights.bin", "wb") as f:
        if sparse:
            f.truncate(size)
        else:
            f.writelines(os.urandom(MIB) for _ in range(size // MIB))
    return model


@dataclass
class CreateResult:
    size: int
    part: int
    walls: dict[str, float]
    rss: dict[str, float]  # MiB, the largest of the rounds
    same: bool
    samples: dict[str, list[tuple[float, int]]]
    archive: Path


@dataclass
class InspectResult:
    size: int
    walls: dict[str, float]
    fetched: int
    requests: int
    disk: int


@dataclass
class VerifyResult:
    size: int
    walls: dict[str, float]
    ratio: float


def alternate(jobs: list[str], i: int) -> list[str]:
    return jobs if i % 2 == 0 else jobs[::-1]


def create_case(s3: S3Server, work: Path, size: int, rounds: int) -> CreateResult:
    env = {**clean_env(), **s3.env(), "SOURCE_DATE_EPOCH": "1700000000"}  # the same archive each time
    s3.client().create_bucket(Bucket="bench")
    model = make_model(work, size, sparse=False)
    local = work / "m.mar"
    base = ["create", "-q", "--model-name", "m", "--model-path", str(model), "--handler", "handler:handle"]
    with open(local, "wb") as out:
        subprocess.run(markit(*base, "-o", "-"), stdout=out, check=True, env=env)
    part = part_size(size)
    samples: dict[str, list[tuple[float, int]]] = {"markit": [], "s3fs": []}
    for i in range(rounds):
        for job in alternate(["markit", "s3fs"], i):
            if job == "markit":
                cmd = markit(*base, "-f", "-o", "s3://bench/markit.mar")
            else:
                cmd = [sys.executable, "-c", PUT, str(local), "s3://bench/s3fs.mar", str(part)]
            samples[job].append(timed(cmd, env))
    same = s3.client().get_object(Bucket="bench", Key="markit.mar")["Body"].read() == local.read_bytes()
    walls = {job: statistics.median(w for w, _ in s) for job, s in samples.items()}
    rss = {job: max(r for _, r in s) / 1024 for job, s in samples.items()}
    return CreateResult(local.stat().st_size, part, walls, rss, same, samples, local)


def inspect_case(http: RangeServer, work: Path, size: int, rounds: int) -> InspectResult:
    model = make_model(work, size, sparse=True)
    big = http.root / "big.mar"
    subprocess.run(markit("create", "-q", "--model-name", "big", "--model-path", str(model), "--handler",
                          "handler:handle", "-o", str(big)), check=True, env=clean_env())
    subprocess.run(["fallocate", "--dig-holes", str(big)], check=False)
    url = f"{http.base}/big.mar"
    walls: dict[str, list[float]] = {"remote": [], "local": []}
    fetched: list[tuple[int, int]] = []
    for i in range(rounds):
        for job in alternate(["remote", "local"], i):
            http.reset()
            walls[job].append(timed(markit("inspect", url if job == "remote" else str(big)), clean_env())[0])
            if job == "remote":
                fetched.append((http.requests, http.bytes_sent))
    result = InspectResult(big.stat().st_size, {j: statistics.median(w) for j, w in walls.items()},
                           max(b for _, b in fetched), max(r for r, _ in fetched), big.stat().st_blocks * 512)
    big.unlink()
    return result


def verify_case(http: RangeServer, archive: Path, rounds: int) -> VerifyResult:
    served = http.root / "v.mar"
    os.link(archive, served)
    walls: dict[str, list[float]] = {"remote": [], "local": []}
    sent = []
    for i in range(rounds):
        for job in alternate(["remote", "local"], i):
            http.reset()
            target = f"{http.base}/v.mar" if job == "remote" else str(served)
            walls[job].append(timed(markit("verify", target), clean_env())[0])
            if job == "remote":
                sent.append(http.bytes_sent)
    size = served.stat().st_size
    served.unlink()
    return VerifyResult(size, {j: statistics.median(w) for j, w in walls.items()}, max(sent) / size)


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def rows(c: CreateResult, i: InspectResult, v: VerifyResult) -> list[str]:
    """The table's rows: case, markit, peer, ratio, target, verdict."""
    cw, iw, vw = c.walls, i.walls, v.walls
    ratio = cw["s3fs"] / cw["markit"]
    create = (f"| create to S3, {c.size / GIB:.2f} GiB archive, {c.part // MIB} MiB parts, one stream |"
              f" {cw['markit']:.2f} s ({c.size / MIB / cw['markit']:.0f} MiB/s), peak RSS {c.rss['markit']:.0f} MiB |"
              f" s3fs `put_file` {cw['s3fs']:.2f} s ({c.size / MIB / cw['s3fs']:.0f} MiB/s),"
              f" RSS {c.rss['s3fs']:.0f} MiB | {ratio:.2f}x the throughput | >= 0.8x, RSS < 128 MiB |"
              f" {verdict(ratio >= 0.8 and c.rss['markit'] < 128)} |")
    inspect = (f"| inspect of a remote {i.size / GIB:.1f} GiB .mar (HTTP) | {iw['remote']:.2f} s, {i.fetched:,} bytes"
               f" in {i.requests} requests (the server's count) | local inspect {iw['local']:.2f} s |"
               f" {iw['remote'] / iw['local']:.2f}x the wall | <= 3x, < 4 MiB |"
               f" {verdict(iw['remote'] <= 3 * iw['local'] and i.fetched < 4 * MIB)} |")
    verify = (f"| verify of a remote {v.size / GIB:.2f} GiB .mar (HTTP) | {vw['remote']:.2f} s, {v.ratio:.4f}x its"
              f" size fetched | local verify {vw['local']:.2f} s | {vw['remote'] / vw['local']:.2f}x the wall |"
              f" one pass, <= 1.01x | {verdict(v.ratio <= 1.01)} |")
    return [create, inspect, verify]


def render(c: CreateResult, i: InspectResult, v: VerifyResult, rounds: int) -> str:
    head = (f"`python benchmarks/remote.py` ({rounds} alternating rounds, medians), {time.strftime('%Y-%m-%d')},"
            " on this 2-vCPU machine; every server on 127.0.0.1 (moto's S3 server in its own process, an HTTP"
            " server that honours Range and counts what it sends). Against moto, markit and moto share the two"
            " vCPUs: the ratio, not the MB/s, is what carries over to a real store.")
    tail = (f"The S3 object markit wrote is byte-for-byte its `-o -` archive: {c.same}. The {i.size / GIB:.0f} GiB"
            f" .mar took {i.disk / MIB:.1f} MiB of disk once its zero runs were punched out (the same bytes).")
    return "\n".join(["# Remote archives: benchmarks", "", head, "",
                      "| case | markit | peer | ratio | target | verdict |", "| --- | --- | --- | --- | --- | --- |",
                      *rows(c, i, v), "", tail, "",
                      f"Every sample (wall s, peak RSS KiB) of the create case: {c.samples!r}", ""])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size-gib", type=float, default=1.0, help="checkpoint size for create and verify (GiB)")
    p.add_argument("--inspect-gib", type=float, default=8.0, help="size of the .mar inspected remotely (GiB)")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds per case")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks-remote.md", help="the report to write")
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="markit-bench-remote-"))
    try:
        (work / "www").mkdir()
        with s3_server() as s3, range_server(work / "www") as http:
            c = create_case(s3, work, int(args.size_gib * GIB), args.rounds)
            print(f"create: {c.walls} rss {c.rss}", flush=True)
            v = verify_case(http, c.archive, args.rounds)
            print(f"verify: {v}", flush=True)
            i = inspect_case(http, work, int(args.inspect_gib * GIB), args.rounds)
            print(f"inspect: {i}", flush=True)
        args.out.write_text(render(c, i, v, args.rounds))
        print(f"wrote {args.out}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
