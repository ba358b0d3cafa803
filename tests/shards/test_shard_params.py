"""The shards and shard_labels params blocks: the real params.yaml loads; bad values fail with the key."""

import pytest

from headflow import params
from headflow.config import ConfigError, from_dict
from headflow.shards.params import ShardLabelsParams, ShardsParams


def test_real_blocks_load(project_root):
    s = params.load("shards", project_root / "params.yaml")
    assert (s.codec, s.mouth.height, s.mouth.width, s.eyes.height, s.eyes.width) == ("zstd", 96, 96, 64, 160)
    assert params.load("shard_labels", project_root / "params.yaml").max_label_frame_mismatch == 2


@pytest.mark.parametrize("block, cls, data, message", [
    ("shards", ShardsParams, {"codec": "lz4"}, "expected one of 'zstd', 'zlib'"),
    ("shards", ShardsParams, {"codec": "zlib", "level": 12}, "level: got 12; allowed: in [1, 9]"),
    ("shards", ShardsParams, {"eyes": {"height": 64, "width": 300}}, "a region box inside the 256x256 crop"),
    ("shards", ShardsParams, {"mouths": {}}, "did you mean 'mouth'"),
    ("shard_labels", ShardLabelsParams, {"max_label_frame_mismatch": -1}, "max_label_frame_mismatch: got -1; allowed: >= 0"),
])
def test_bad_values_name_the_key(block, cls, data, message):
    with pytest.raises(ConfigError) as err:
        from_dict(cls, data, block)
    assert message in str(err.value) and block in str(err.value)
