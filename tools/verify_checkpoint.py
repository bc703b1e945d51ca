#!/usr/bin/env python3
"""Checks a checkpoint step directory written by the orchestrator the way PyTorch users will read it.

    python3 tools/verify_checkpoint.py CHECKPOINTS/JOB/step-000000123

For every file in manifest.json: the SHA-256 and length, then a strict parse of the safetensors layout (header
length, JSON header starting with '{', string-only __metadata__, data_offsets relative to the data start tiling it
with no gap, overlap or trailing byte, sizes matching dtype x shape). Where the `safetensors` and `torch` packages
are installed it also loads every file with safetensors.torch.load_file and compares names, dtypes and shapes.
Reads manifests of format 2 (each shard listed once: file, firstGroup, groupCount, bytes, sha256) and of format 1
(the same fields, with the range and file repeated as "groups" and "content", which this script ignores).
Exits 1 with the problems listed, 0 when all is well.
"""
import hashlib
import json
import struct
import sys
from pathlib import Path

SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4}
FORMATS = (1, 2)


def parse(path):
    """The tensors of a safetensors file as {name: (dtype, shape)}, or ValueError naming the problem."""
    data = path.read_bytes()
    if len(data) < 8:
        raise ValueError("shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8 or n > 100_000_000:
        raise ValueError(f"header length {n} is beyond the file")
    header_bytes = data[8:8 + n]
    if not header_bytes.startswith(b"{"):
        raise ValueError("the header does not start with '{'")
    header = json.loads(header_bytes.decode("utf-8"))
    for key, value in header.pop("__metadata__", {}).items():
        if not isinstance(value, str):
            raise ValueError(f"__metadata__ {key!r} is not a string")
    spans, tensors = [], {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        count = 1
        for dim in entry["shape"]:
            count *= dim
        if count * SIZES[entry["dtype"]] != end - begin:
            raise ValueError(f"{name}: {entry['dtype']} {entry['shape']} does not fill [{begin}, {end})")
        spans.append((begin, end, name))
        tensors[name] = (entry["dtype"], list(entry["shape"]))
    position = 0
    for begin, end, name in sorted(spans):
        if begin != position:
            raise ValueError(f"{name}: starts at {begin}, the previous tensor ends at {position}")
        position = end
    if position != len(data) - 8 - n:
        raise ValueError(f"the tensors cover {position} of {len(data) - 8 - n} data bytes")
    return tensors


def torch_tensors(path):
    """{name: (dtype, shape)} as PyTorch reads the file, or None without safetensors and torch."""
    try:
        from safetensors.torch import load_file
    except ImportError:
        return None
    codes = {"torch.float64": "F64", "torch.float32": "F32", "torch.float16": "F16", "torch.bfloat16": "BF16",
             "torch.int64": "I64", "torch.int32": "I32"}
    return {name: (codes[str(t.dtype)], list(t.shape)) for name, t in load_file(str(path)).items()}


def main(step_directory):
    step = Path(step_directory)
    manifest = json.loads((step / "manifest.json").read_text())
    if manifest.get("formatVersion") not in FORMATS:
        print(f"{step / 'manifest.json'}: format version {manifest.get('formatVersion')}; this script reads {FORMATS}")
        return 1
    files = [manifest["trunk"]] + manifest["shards"]
    problems, torch_checked = [], 0
    next_group = 0
    for shard in manifest["shards"]:
        if shard["firstGroup"] != next_group or shard["groupCount"] < 1:
            problems.append(f"{shard['file']}: groups [{shard['firstGroup']}, +{shard['groupCount']}) do not follow group {next_group}")
        next_group = shard["firstGroup"] + shard["groupCount"]
    if next_group != manifest["job"]["shape"]["groups"]:
        problems.append(f"the shards cover groups [0, {next_group}) of [0, {manifest['job']['shape']['groups']})")
    for listed in files:
        path = step / listed["file"]
        content = path.read_bytes()
        if len(content) != listed["bytes"] or hashlib.sha256(content).hexdigest() != listed["sha256"]:
            problems.append(f"{path}: length or SHA-256 differs from the manifest")
            continue
        try:
            ours = parse(path)
        except (ValueError, KeyError, TypeError, UnicodeDecodeError, json.JSONDecodeError) as e:
            problems.append(f"{path}: {e}")
            continue
        theirs = torch_tensors(path)
        if theirs is not None:
            torch_checked += 1
            if theirs != ours:
                problems.append(f"{path}: safetensors.torch.load_file reads {theirs}, the header says {ours}")
    for problem in problems:
        print(problem)
    print(f"{len(files)} files, {len(problems)} problems, {torch_checked} loaded with safetensors.torch")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
