"""reports/report.html: one self-contained page, readable offline, built from the evaluate stage's files.

No server, no network, no JavaScript: charts are matplotlib PNGs embedded as base64 `data:` URIs
(`dvc plots show` loads its charting library from a CDN and renders blank offline), frames are
embedded PNGs, videos are relative links. Sections: summary, the metric table per protocol (ground
truth and baselines first, mean [95% interval], failures), paired comparisons, per-metric bar charts,
side-by-side frames (ground truth | baselines | each family), failures and quarantine, metrics that
are null and why, speed, and how each number was computed.

    python -m headflow.evaluate.report [--data data/interim/evaluate] [--out reports/report.html]
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from headflow.catalog import CATALOG
from headflow.evaluate.baselines import BASELINES, REFERENCE_SYSTEMS

SET_METRICS = ("fid_face", "fid_inception")
"""Aggregate-only metrics (one number per set of clips, `n` counts frames, not clips)."""

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1400px;color:#222;
line-height:1.4;padding:0 1em}
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ccc;font-size:1.3em}h3{font-size:1.1em}
table{border-collapse:collapse;margin:0.5em 0 1.5em;font-size:0.85em}
th,td{border:1px solid #ddd;padding:3px 6px;text-align:right;vertical-align:top}
th{background:#f3f3f3}td.name,th.name{text-align:left;white-space:nowrap}
tr.ref td{background:#f8fbff}tr.failed td{background:#fff3f3}
.ci{color:#777;font-size:0.85em}.win{background:#e3f7e3 !important;font-weight:600}
.loss{background:#fde8e8 !important}.diff{background:#fff5cc !important;font-weight:600}
.muted{color:#888}.frames{display:flex;flex-wrap:wrap;gap:8px}.frames figure{margin:0;text-align:center}
.frames img{width:160px;height:160px;image-rendering:auto;border:1px solid #ccc}
figcaption{font-size:0.75em;max-width:160px;word-break:break-all}
.charts{display:flex;flex-wrap:wrap;gap:10px}.charts img{width:420px;border:1px solid #eee}
code{background:#f4f4f4;padding:0 3px}
"""


def page(title: str, body: str) -> str:
    """A complete HTML document with the report's style (no external resource)."""
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
            f"<link rel=\"icon\" href=\"data:,\">\n<title>{html.escape(title)}</title>\n"
            f"<style>{CSS}</style></head>\n<body>\n<h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n")


def png_data_uri(fig) -> str:
    """A matplotlib figure as an embedded PNG (no timestamp or version metadata)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def image_data_uri(rgb: np.ndarray) -> str:
    """An RGB uint8 image as an embedded PNG (lossless, deterministic)."""
    import cv2

    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
    if not ok:
        raise ValueError("image_data_uri: PNG encoding failed")
    return "data:image/png;base64," + base64.b64encode(buf.tobytes()).decode()


def fmt(x, digits: int = 3) -> str:
    """A number for a table cell: inf as inf, NaN / None as an em dash."""
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "&mdash;"
    if isinstance(x, (float, np.floating)) and np.isinf(x):
        return "inf" if x > 0 else "-inf"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    return f"{float(x):.{digits}g}" if abs(float(x)) >= 1000 else f"{float(x):.{digits}f}"


def label(system: str, variant) -> str:
    return system if variant is None or (isinstance(variant, float) and np.isnan(variant)) or variant == "" \
        else f"{system}:{variant}"


def system_order(protocol: str, labels) -> list[str]:
    """Ground truth and baselines first (in BASELINES order), then generated systems by name."""
    refs = [s for s in BASELINES.get(protocol, ()) if s in labels]
    return refs + sorted(s for s in labels if s not in REFERENCE_SYSTEMS)


def metric_table(agg: pd.DataFrame, comparisons: pd.DataFrame, protocol: str) -> str:
    """The protocol's table: a row per system, a column per metric, mean and [low, high]."""
    a = agg[agg.protocol == protocol].copy()
    if a.empty:
        return "<p class=\"muted\">no rows</p>"
    a["label"] = [label(s, v) for s, v in zip(a.system, a.variant)]
    metrics = [m for m in dict.fromkeys(a.metric) if a.loc[a.metric == m, "mean"].notna().any()]
    c = comparisons[comparisons.protocol == protocol] if len(comparisons) else comparisons
    head = "".join(f"<th>{html.escape(m)}<br><span class=\"ci\">{'&uarr;' if bool(a[a.metric == m].higher_is_better.iloc[0]) else '&darr;'}</span></th>"
                   for m in metrics)
    out = [f"<table class=\"metrics\" data-protocol=\"{protocol}\"><thead><tr><th class=\"name\">system</th>"
           f"<th>clips</th><th>failed</th>{head}</tr></thead><tbody>"]
    for lab in system_order(protocol, set(a.label)):
        rows = a[a.label == lab].set_index("metric")
        ref = lab in REFERENCE_SYSTEMS
        n_failed = int(rows.n_failed.max()) if len(rows) else 0
        per_clip_rows = rows[~rows.index.isin(SET_METRICS)]
        n_clips = int((per_clip_rows.n + per_clip_rows.n_dropped).max()) if len(per_clip_rows) else 0
        cls = "ref" if ref else ("failed" if n_failed else "")
        cells = []
        for m in metrics:
            if m not in rows.index:
                cells.append("<td>&mdash;</td>")
                continue
            r = rows.loc[m]
            mark = ""
            if not ref and len(c):
                sys_c = c[(c.metric == m) & ([label(s, v) for s, v in zip(c.system, c.variant)] == np.array(lab))]
                if len(sys_c) and (sys_c.winner == "system").all():
                    mark = " win"
                elif len(sys_c) and (sys_c.winner == "opponent").any():
                    mark = " loss"
            interval = "" if not np.isfinite(r.low) else f"<br><span class=\"ci\">[{fmt(r.low)}, {fmt(r.high)}]</span>"
            dropped = f"<br><span class=\"ci\">{int(r.n_dropped)} non-finite</span>" if r.n_dropped and np.isfinite(r["mean"]) else ""
            cells.append(f"<td class=\"{mark.strip()}\">{fmt(r['mean'])}{interval}{dropped}</td>")
        out.append(f"<tr class=\"{cls}\" data-system=\"{html.escape(lab)}\"><td class=\"name\">{html.escape(lab)}</td>"
                   f"<td>{n_clips}</td><td>{n_failed}</td>{''.join(cells)}</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def failed_note(r) -> str:
    """ " (k failed: scored worst)" when k of the paired clips had no usable output (see `aggregate.compare`)."""
    k = int(getattr(r, "n_failed", 0) or 0)
    return f"<br><span class=\"ci\">{k} failed: scored worst</span>" if k else ""


def comparison_table(comparisons: pd.DataFrame, protocol: str) -> str:
    c = comparisons[comparisons.protocol == protocol] if len(comparisons) else comparisons
    if c.empty:
        return ("<p class=\"muted\">No generated system has outputs in this protocol yet: nothing to compare "
                "with the baselines.</p>")
    out = ["<table><tr><th class=\"name\">system</th><th class=\"name\">vs</th><th class=\"name\">metric</th>"
           "<th>mean difference</th><th>interval</th><th>clips</th><th class=\"name\">verdict</th></tr>"]
    for r in c.itertuples():
        verdict = {"system": "win", "opponent": "loss", "none": "no significant difference"}[r.winner]
        cls = {"system": "win", "opponent": "loss", "none": ""}[r.winner]
        out.append(f"<tr><td class=\"name\">{html.escape(label(r.system, r.variant))}</td><td class=\"name\">"
                   f"{html.escape(r.opponent)}</td><td class=\"name\">{r.metric}</td><td>{fmt(r.diff)}</td>"
                   f"<td>[{fmt(r.low)}, {fmt(r.high)}]</td><td>{r.n}{failed_note(r)}</td>"
                   f"<td class=\"name {cls}\">{verdict}</td></tr>")
    out.append("</table>")
    return "\n".join(out)


def bar_charts(agg: pd.DataFrame, protocol: str) -> str:
    """One bar chart per metric: a bar per system with its interval (inf / NaN bars left out, said so)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a = agg[agg.protocol == protocol].copy()
    a["label"] = [label(s, v) for s, v in zip(a.system, a.variant)]
    imgs = []
    for m in dict.fromkeys(a.metric):
        g = a[a.metric == m].set_index("label")
        order = [s for s in system_order(protocol, set(g.index))]
        g = g.loc[order]
        finite = np.isfinite(g["mean"].to_numpy(np.float64))
        if not finite.any():
            continue
        fig, ax = plt.subplots(figsize=(5.2, 0.45 * len(g) + 1.0))
        y = np.arange(len(g))
        means = np.where(finite, g["mean"], 0.0)
        colours = ["#8aa9d6" if s in REFERENCE_SYSTEMS else "#e39b4c" for s in g.index]
        ax.barh(y, means, color=colours)
        low, high = g["low"].to_numpy(np.float64), g["high"].to_numpy(np.float64)
        has = finite & np.isfinite(low) & np.isfinite(high)
        ax.errorbar(means[has], y[has], xerr=[means[has] - low[has], high[has] - means[has]], fmt="none",
                    ecolor="#333", capsize=3)
        for i in np.flatnonzero(~finite):
            ax.text(0, y[i], " inf" if g["mean"].iloc[i] == np.inf else " n/a", va="center", fontsize=8)
        ax.set_yticks(y, [s for s in g.index], fontsize=8)
        ax.invert_yaxis()
        direction = "higher is better" if bool(g.higher_is_better.iloc[0]) else "lower is better"
        ax.set_title(f"{protocol}: {m} ({direction})", fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
        imgs.append(f"<img alt=\"{protocol} {m}\" src=\"{png_data_uri(fig)}\">")
    return "<div class=\"charts\">" + "".join(imgs) + "</div>" if imgs else "<p class=\"muted\">no finite values</p>"


def frames_section(data_dir: Path, report_dir: Path, per_clip: pd.DataFrame, meta: dict) -> str:
    keys_path, arr_path = data_dir / "previews.json", data_dir / "previews.npy"
    if not keys_path.exists():
        return "<p class=\"muted\">no previews</p>"
    keys = json.loads(keys_path.read_text())
    arrays = np.load(arr_path)
    by_clip: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    for k, img in zip(keys, arrays):
        clip, protocol, lab = k.split("|")
        by_clip.setdefault(clip, {}).setdefault(protocol, {})[lab] = img
    out = [f"<p>The 256x256 aligned crop of the middle sampled frame of the first {len(by_clip)} clip(s), every "
           "system side by side. Videos: ground truth links to ingest's canonical clip; baselines exist only in "
           "memory (they are rebuilt from the real frames in every run).</p>"]
    for clip in sorted(by_clip):
        video = meta.get("video_paths", {}).get(clip)
        link = f" &middot; <a href=\"{html.escape(_rel(video, report_dir))}\">ground-truth video</a>" if video else ""
        out.append(f"<h3>{html.escape(clip)}{link}</h3>")
        order = ("reconstruction", "dubbing", "reenactment", "transfer")
        for protocol, images in sorted(by_clip[clip].items(), key=lambda kv: order.index(kv[0])):
            figs = []
            for lab in system_order(protocol, set(images)):
                out_path = per_clip[(per_clip.clip_id == clip) & (per_clip.protocol == protocol)
                                    & ([label(s, v) for s, v in zip(per_clip.system, per_clip.variant)] == np.array(lab))
                                    ].output_path.dropna()
                vlink = (f"<br><a href=\"{html.escape(_rel(out_path.iloc[0], report_dir))}\">video</a>"
                         if len(out_path) else "")
                figs.append(f"<figure><img alt=\"{html.escape(lab)}\" src=\"{image_data_uri(images[lab])}\">"
                            f"<figcaption>{html.escape(lab)}{vlink}</figcaption></figure>")
            out.append(f"<p><b>{protocol}</b></p><div class=\"frames\">{''.join(figs)}</div>")
    return "\n".join(out)


def _rel(path: str, report_dir: Path) -> str:
    return Path(os.path.relpath(Path(path).resolve(), report_dir.resolve())).as_posix()


def failures_section(per_clip: pd.DataFrame, quarantine: pd.DataFrame) -> str:
    failed = per_clip[per_clip.status == "failed"]
    out = []
    if failed.empty and quarantine.empty:
        return "<p>No generated output failed or was quarantined.</p>"
    if len(failed):
        counts = failed.groupby(["system", "reason_code"]).size().reset_index(name="n")
        out.append("<p>Failed outputs count against their system: each takes the worst value any system reached "
                   "on its clip, in every metric.</p><table><tr><th class=\"name\">system</th><th class=\"name\">"
                   "reason</th><th>outputs</th></tr>")
        out += [f"<tr class=\"failed\"><td class=\"name\">{html.escape(r.system)}</td><td class=\"name\">{r.reason_code}"
                f"</td><td>{r.n}</td></tr>" for r in counts.itertuples()]
        out.append("</table>")
    if len(quarantine):
        out.append(f"<p>{len(quarantine)} quarantined generated output(s) "
                   "(<code>data/interim/evaluate/quarantine.parquet</code>):</p><table><tr><th class=\"name\">output"
                   "</th><th class=\"name\">reason</th><th class=\"name\">message</th></tr>")
        out += [f"<tr class=\"failed\"><td class=\"name\">{html.escape(r.clip_id)}</td><td class=\"name\">{r.reason_code}"
                f"</td><td class=\"name\">{html.escape(str(r.message))[:300]}</td></tr>" for r in quarantine.itertuples()]
        out.append("</table>")
    return "\n".join(out)


def how_section(meta: dict) -> str:
    p = meta.get("params", {})
    ck = meta.get("checkpoints", {})
    ck_path = meta.get("checkpoint_paths", {})
    k = p.get("sample_frames", 8)
    items = [
        ("Clips and frames", f"The {html.escape(str(meta.get('split', 'test')))} split ({len(meta.get('clips', []))} "
         f"clips). Every system of a protocol is scored on the same frames of the same clips: from frame "
         f"{p.get('frame_start', 1)} (frame 0 is the reference any system may be given: the static baseline repeats it, "
         "the reference fill copies its lower face) to the last frame whose 16-frame mel window lies inside the "
         "driving audio (<code>headflow.manifest.generated.scored_range</code>). Dubbing: clip i (by id) takes the "
         "audio of clip i+1 (<code>dubbing_pairs</code>)."),
        ("Crops", "PSNR, SSIM (whole and masked) and the Laplacian variance use the 96x96 Wav2Lip face crop of the "
         "faces stage's box (<code>crop_transform_for</code>); the mask is its lower half (rows 48-95), where the "
         "lip-sync U-Net regenerates the face. CPBD, landmarks and face descriptors use the faces stage's 256x256 "
         "aligned crop. Generated videos in full-frame geometry are cropped by the real clip's transforms; 256x256 "
         "outputs are taken as the aligned crop."),
        ("Every frame", "PSNR (dB, 0-255 range; identical frames give inf, reported as inf), masked PSNR (per RGB "
         "channel, averaged: the lip-sync paper's Eqs. 15-16), SSIM (Gaussian 11x11, sigma 1.5, K1 0.01, K2 0.03, "
         "population covariance, valid region; equal to scikit-image with gaussian_weights=True, "
         "use_sample_covariance=False), masked SSIM, Laplacian variance (lower half, grey, 4-neighbour kernel, no "
         "pre-blur); per-frame values are averaged over the clip."),
        ("Sampled frames", f"k = {k} frames per clip: <code>frame_sample(n, {k})</code> over the clip's "
         f"reconstruction range [s, s + n), frames s + floor((i + 0.5) n / {k}) (midpoints of {k} equal segments); "
         "a task with a shorter range (dubbing with a shorter audio) keeps those inside it, so every protocol and "
         "system is looked at on the same frames of a clip. CPBD (cpbd 1.0.7 on the grey crop), "
         "68 dlib landmarks re-detected on both the system's and the real crop in the same box (the faces stage box "
         "of that frame, mapped into the crop): F-LMD (68 points) and M-LMD (20 mouth points, divided by 20), "
         "Euclidean, in pixels of the 256 crop, no normalisation; AKD (FOMM: per-coordinate absolute error). dlib "
         "ResNet descriptors of the same crops: CSIM (cosine, per frame) and AED (Euclidean), both against the "
         "source clip's real frames (same pose in reconstruction and dubbing); fid_face: Frechet distance of the "
         "pooled descriptors to the real ones (reenactment: self-reenactment outputs only, against the real "
         "frames of the same tasks and sampled frames; cross-reenactment has no ground truth and no FID)."),
        ("Sync", f"LSE-D, LSE-C and offset over +-{p.get('max_offset', 15)} frames (syncnet_python's definitions "
         "without zero padding: each offset averages only the window pairs that exist) from the <b>judge</b>, an "
         f"expert trained by <code>train_judge</code> with another seed and face input, which no generator trains "
         f"against (<code>{html.escape(str(ck_path.get('judge')))}</code>, sha256 {html.escape(str(ck.get('judge')))}); "
         "<code>lse_c_loss_expert</code> is the LSE-C of the expert generators train against "
         f"(<code>{html.escape(str(ck_path.get('loss_expert')))}</code>, sha256 {html.escape(str(ck.get('loss_expert')))}), "
         "kept apart because a generator can learn to fool it. Mouth windows are the lower half of the 96 crop of "
         "frames f..f+4, paired with the mel window of the driving audio at the same absolute frame f; each clip is "
         "centred on its own mean mouth image. <code>lse_c_syncnet</code>: syncnet_python's SyncNet on its own "
         "224x224 crop (box median-filtered over 13 frames, crop_scale 0.4) when its weights are present."),
        ("Intervals and wins", f"Means over clips (a clip's value is the mean over its seeds) with {p.get('ci', 0.95):.0%} "
         f"percentile bootstrap intervals ({p.get('n_boot', 1000)} resamples of the clips, seed {p.get('seed', 0)}). A "
         "generated system beats a baseline only when the paired bootstrap interval of the per-clip differences "
         "excludes 0 (green cells: wins against every baseline; red: a significant loss against one). Non-finite "
         "values (PSNR inf) are not in a mean and are counted; ground truth's PSNR is inf."),
        ("Failures", "A generated output that is missing, unreadable, without audio, with the wrong frame count, "
         "fps or frame size, not covering the scored frames or without a detectable face is quarantined with its "
         "reason and counts against its system at the worst value any system reached on that clip; a task a "
         "system produced no output for counts the same way (<code>not_generated</code>)."),
    ]
    return "<dl>" + "".join(f"<dt><b>{t}</b></dt><dd>{d}</dd>" for t, d in items) + "</dl>"


def unavailable_section(meta: dict) -> str:
    rows = [f"<tr><td class=\"name\">{html.escape(m)}</td><td class=\"name\">{html.escape(w)}</td></tr>"
            for m, w in sorted(meta.get("unavailable", {}).items())]
    rows += [f"<tr><td class=\"name\">{m}</td><td class=\"name\">null until the family that needs it lands "
             "(3DMM landmarks, NMFC masks, head pose, style labels)</td></tr>" for m in meta.get("not_yet", [])]
    rows += [f"<tr><td class=\"name\">{html.escape(c)}</td><td class=\"name\">skipped task: {html.escape(w)}</td></tr>"
             for c, w in meta.get("skipped_tasks", [])]
    return "<table><tr><th class=\"name\">metric</th><th class=\"name\">why it is null</th></tr>" + "".join(rows) + "</table>"


def speed_section(meta: dict) -> str:
    s = meta.get("speed", {})
    groups = sorted({k.rsplit("_frames_per_s", 1)[0] for k in s if k.endswith("_frames_per_s")})
    rows = "".join(f"<tr><td class=\"name\">{g}</td><td>{fmt(s.get(f'{g}_frames_per_s'), 1)}</td>"
                   f"<td>{fmt(s.get(f'{g}_seconds'), 2)}</td></tr>" for g in groups)
    return (f"<p>Total {fmt(s.get('total_seconds'), 1)} s (scoring {fmt(s.get('scoring_wall_seconds'), 1)} s wall); "
            "seconds are summed over worker processes.</p><table><tr><th class=\"name\">group</th><th>frames/s</th>"
            f"<th>seconds</th></tr>{rows}</table>")


def same_run_baselines_note(agg: pd.DataFrame, protocol: str) -> str:
    """What stands in for the evaluation stage's reference systems in a protocol that has none
    (reenactment, transfer: no real clip shows the target doing what another person's driver does).

    Args:
        agg: aggregates.parquet rows (columns protocol, family, variant).
        protocol: the protocol's name.

    Returns:
        A sentence naming the same-run baseline rows ("family:variant+name", written by the families
        beside their outputs and paired by `aggregate.compare`) present for `protocol`, or saying that
        no family wrote any in this run.
    """
    rows = agg[agg.protocol == protocol]
    plus = sorted({f"{f}:{v}" for f, v in zip(rows.get("family", []), rows.get("variant", []))
                   if isinstance(f, str) and isinstance(v, str) and "+" in v})
    head = (f"The evaluation stage has no reference systems for {protocol} (no real clip shows the target "
            "doing what the driver does). ")
    if plus:
        return (head + "The families write their own baselines beside their outputs, on the same tasks and frames: "
                + ", ".join(plus) + "; each variant is compared with its own below, by paired bootstrap.")
    return head + "No family wrote same-run baselines (rows of variant <variant>+<name>) for it in this run."


def build_report(data_dir: Path, report_path: Path) -> str:
    """The report page's HTML from an evaluate output folder (see the module docstring)."""
    data_dir, report_path = Path(data_dir), Path(report_path)
    missing = [n for n in ("per_clip.parquet", "aggregates.parquet", "comparisons.parquet", "quarantine.parquet",
                           "meta.json") if not (data_dir / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{data_dir}: no evaluate outputs ({', '.join(missing)} missing): run "
                                "`dvc repro evaluate` (or `make demo`) first, or pass --data <an evaluate folder>")
    per_clip = pd.read_parquet(data_dir / "per_clip.parquet")
    agg = pd.read_parquet(data_dir / "aggregates.parquet")
    comparisons = pd.read_parquet(data_dir / "comparisons.parquet")
    quarantine = pd.read_parquet(data_dir / "quarantine.parquet")
    meta = json.loads((data_dir / "meta.json").read_text())
    counts = meta.get("counts", {})
    families = sorted(s for s in per_clip.system.unique() if s not in REFERENCE_SYSTEMS)
    body = [f"<p>{counts.get('clips', 0)} {html.escape(str(meta.get('split')))} clips; systems: ground truth, "
            f"baselines{', ' + ', '.join(map(html.escape, families)) if families else ' (no generated output yet)'}; "
            f"{counts.get('generated_outputs', 0)} generated outputs from {len(meta.get('generated_manifests', []))} "
            f"manifest(s), {counts.get('quarantined', 0)} quarantined, {counts.get('failed_rows', 0)} failed rows.</p>"]
    body.append("<p><a href=\"#how\">How each number was computed</a> &middot; <a href=\"#failures\">failures</a>"
                " &middot; <a href=\"#frames\">frames</a> &middot; <a href=\"#charts\">charts</a></p>")
    protocols = [p for p in ("reconstruction", "dubbing", "reenactment", "transfer") if p in set(agg.protocol)]
    for protocol in protocols:
        body.append(f"<h2 id=\"table-{protocol}\">{protocol}</h2>")
        if protocol == "dubbing":
            body.append("<p class=\"muted\">No real video exists for the new audio: full-reference metrics do not "
                        "apply; see reconstruction's ground truth for real speech's sync.</p>")
        if protocol not in BASELINES:
            body.append(f"<p class=\"muted\">{html.escape(same_run_baselines_note(agg, protocol))}</p>")
        body.append(metric_table(agg, comparisons, protocol))
        body.append(f"<h3>paired comparisons with the baselines</h3>{comparison_table(comparisons, protocol)}")
    body.append("<h2 id=\"charts\">per-metric charts</h2>")
    body += [f"<h3>{p}</h3>{bar_charts(agg, p)}" for p in protocols]
    body.append(f"<h2 id=\"frames\">side by side</h2>{frames_section(data_dir, report_path.parent, per_clip, meta)}")
    body.append(f"<h2 id=\"failures\">failures and quarantine</h2>{failures_section(per_clip, quarantine)}")
    body.append(f"<h2 id=\"null\">metrics without a number</h2>{unavailable_section(meta)}")
    body.append(f"<h2 id=\"speed\">speed</h2>{speed_section(meta)}")
    body.append(f"<h2 id=\"how\">how each number was computed</h2>{how_section(meta)}")
    return page("headflow evaluation report", "\n".join(body))


def write_report(data_dir: Path, report_path: Path) -> Path:
    """Build the page and write it atomically; returns its path."""
    from headflow.manifest import atomic_output

    text = build_report(data_dir, report_path)
    with atomic_output(report_path) as tmp:
        tmp.write_text(text, encoding="utf-8")
        tmp.chmod(0o644)   # a page to open in any browser, not a private temporary file
    return Path(report_path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(CATALOG.folder("evaluate")))
    ap.add_argument("--out", default=str(CATALOG.report("evaluate", "page")))
    args = ap.parse_args(argv)
    print(write_report(Path(args.data), Path(args.out)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
