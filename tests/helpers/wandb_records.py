"""Reading a W&B offline run file (``run-<id>.wandb``): its records, for tests.

The file is a log of 32 KiB blocks after a 7-byte header (``:W&B``, magic, version); each record
is stored as one or more fragments with a 7-byte header (CRC, length, type: full, first, middle,
last), as in LevelDB's log format. Each record is a ``wandb_internal_pb2.Record``.
"""

from __future__ import annotations

from pathlib import Path

from wandb.proto import wandb_internal_pb2

BLOCK = 32 * 1024
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def record_bytes(path: Path) -> list[bytes]:
    data = Path(path).read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path} is not a W&B run file")
    records, fragments, pos = [], [], HEADER
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:  # the rest of a block too short for a header is padding
            pos += left
            continue
        length = int.from_bytes(data[pos + 4 : pos + 6], "little")
        kind = data[pos + 6]
        payload = data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        if kind == FULL:
            records.append(payload)
        elif kind == FIRST:
            fragments = [payload]
        elif kind == MIDDLE:
            fragments.append(payload)
        elif kind == LAST:
            records.append(b"".join([*fragments, payload]))
            fragments = []
        else:  # zeros: the end of what was written
            break
    return records


def history_values(path: Path, key: str) -> list[str]:
    """The JSON values of ``key`` in every history record of the run file, in order."""
    values = []
    for raw in record_bytes(path):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(raw)
        if record.WhichOneof("record_type") == "history":
            values += [
                item.value_json
                for item in record.history.item
                if (item.key or "/".join(item.nested_key)) == key
            ]
    return values
