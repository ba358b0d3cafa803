"""The frame-level phone recogniser on the demo: train on the train split's aligned frame labels, frame
accuracy on every split (held-out speakers: val t1_3, test t1_2) against the majority class.

    PYTHONPATH=src:. python bench/styletalk_recognizer.py
"""

import time, numpy as np, torch
from headflow.shards import read_clip, accepted_clips
from headflow.generators.styletalk.recognizer import LabelledAudio, train_recognizer, frame_accuracy
torch.set_num_threads(1)
rows = accepted_clips()
by = {"train": [], "val": [], "test": []}
for r in rows.itertuples():
    s = read_clip(r.clip_id, ("mel", "phones"))
    by[r.split].append(LabelledAudio(np.asarray(s.mel, np.float32), s.phones.styletalk_index, s.phones.valid))
t = time.perf_counter()
net = train_recognizer(by["train"], steps=800, batch=64, width=64)
print("train s", round(time.perf_counter() - t, 1))
for k in ("train", "val", "test"):
    print(k, len(by[k]), "frame accuracy", round(frame_accuracy(net, by[k]), 3))
from collections import Counter
y = np.concatenate([c.phones for c in by["test"]]); print("majority-class accuracy (test)", round(Counter(y.tolist()).most_common(1)[0][1] / len(y), 3))
