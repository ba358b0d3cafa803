"""One tiny project with its shards cut, shared by the shards tests (cutting it takes a few seconds)."""

import pytest
from shard_project import write_project

from headflow.shards.params import ShardsParams

CLIPS = {"a-000000000a": 24, "b-000000000b": 20, "c-000000000c": 16, "short-000000000d": 12, "bad-000000000e": 10}
INVALID = {"a-000000000a": [3, 4]}


@pytest.fixture(scope="session")
def shard_project(tmp_path_factory):
    """(project root, shards metrics): `short` has landmarks for 15 frames of a 12-frame video, `bad` is
    not a video, `a` has no valid landmarks on frames 3 and 4; a stale clip file lies in the output."""
    from headflow.shards.stage import run_stage

    root = tmp_path_factory.mktemp("shards")
    write_project(root, CLIPS, invalid=INVALID, landmark_frames={"short-000000000d": 15}, unreadable=("bad-000000000e",))
    stale = root / "data/interim/shards/clips/gone-0000000000.npz"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"from an earlier run")
    metrics = run_stage(ShardsParams(workers=1), project_root=root, progress=False)
    return root, metrics
