"""A short, human summary of the pipeline's state: stages, accepted/quarantined clips, bad-input verdicts,
each stage's wall time (of the run that printed it) and disk use.

`python -m headflow.summary` (or `make summary`) prints it for whatever has been built;
`headflow.demo_run` prints it at the end of `make demo`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from headflow import params as P
from headflow.catalog import CATALOG, Catalog


def _read(path: Path) -> pd.DataFrame | None:
    return pd.read_parquet(path) if path.exists() else None


def bad_input_verdicts(corpus: pd.DataFrame, quarantines: dict[str, pd.DataFrame],
                       demo_root: str) -> pd.DataFrame:
    """For each deliberately bad demo input: expected stage/reason vs what the pipeline did."""
    bad = corpus[corpus.kind == "bad"]
    rows = []
    for r in bad.itertuples():
        # an input may be quarantined by several independent stages (e.g. align: no_transcript while
        # faces rejects it as ambiguous_speaker); the verdict is about the stage expected to reject it, and
        # an ingest rejection for another reason is wrong (nothing downstream ever sees the input)
        hits = {stage: q.reason_code[q.source_path == r.source_path].iloc[0] for stage, q in quarantines.items()
                if (q.source_path == r.source_path).any()}
        if hits.get(r.expected_stage) == r.expected_reason:
            verdict = "ok"
        elif r.expected_stage not in quarantines and ("ingest" not in hits or r.expected_stage == "ingest"):
            verdict = f"pending: stage '{r.expected_stage}' not in the pipeline yet"
        else:
            verdict = "WRONG"
        got = ", ".join(f"{stage}:{reason}" for stage, reason in hits.items()) or "accepted"
        rows.append({"input": f"{demo_root}/{r.source_path}", "expected": f"{r.expected_stage}:{r.expected_reason}",
                     "got": got, "verdict": verdict})
    return pd.DataFrame(rows)


def speakers_by_split(clips: pd.DataFrame) -> list[str]:
    """One line per split (train, val, test; absent ones left out): its speakers with their clip counts.

    Example: `test: t1_2 (10)` for a split holding the 10 clips of speaker t1_2. Speakers are listed
    by clip count (most first), ties by name; a `style` column with values adds the style counts.
    """
    lines = []
    for name in ("train", "val", "test"):
        part = clips[clips.split == name]
        if not len(part):
            continue
        counts = sorted(part.speaker_id.value_counts().items(), key=lambda kv: (-kv[1], kv[0]))
        line = (f"  {name}: {len(counts)} speaker{'s' * (len(counts) != 1)}, {len(part)} clips: "
                + ", ".join(f"{spk} ({n})" for spk, n in counts))
        if "style" in part and part["style"].notna().any():
            styles = part["style"].dropna().value_counts().sort_index().to_dict()
            line += f"; styles {styles}"
        lines.append(line)
    return lines


def evaluation_lines(catalog: Catalog = CATALOG) -> list[str]:
    """The judge's line (its settings from params.yaml's `train_judge` block) and the evaluation's line."""
    lines = []
    judge = catalog.metrics("train_judge")
    if judge.exists():
        m = json.loads(judge.read_text())
        try:
            p = P.load("train_judge", catalog.root / "params.yaml")
            settings = f"{p.model.face_input}, width {p.model.width}, seed {p.loop.seed}"
        except Exception:  # noqa: BLE001 - the summary must not fail on a params problem
            settings = "settings: params.yaml train_judge"
        lines.append(f"train_judge: sync judge ({settings}) held-out {', '.join(m.get('held_out_speakers', []))} "
                     f"balanced accuracy {m.get('val_balanced_accuracy')}, {m.get('train_seconds')} s of training "
                     f"-> {catalog.model('train_judge', 'judge') / 'last.pt'}")
    evaluation = catalog.metrics("evaluate")
    if evaluation.exists():
        m = json.loads(evaluation.read_text())
        systems = sorted({k.split("/")[1] for k in m if k.count("/") >= 2 and not k.startswith("speed/")})
        sync = m.get("reconstruction/ground_truth/lse_c")
        lines.append(f"evaluate: {m.get('clips')} test clips, systems {', '.join(systems)}; ground truth LSE-C "
                     f"{sync if sync is not None else 'n/a'}; {m.get('quarantined', 0)} quarantined outputs, "
                     f"{m.get('speed/total_seconds')} s -> {catalog.report('evaluate', 'page')}")
    return lines


def generator_lines(catalog: Catalog = CATALOG) -> list[str]:
    """One line per trained and generated generator run, from each family's train_/finetune_/generate_ metrics."""
    lines = []
    if "train_lipsync" in catalog.stages and catalog.metrics("train_lipsync").exists():
        m = json.loads(catalog.metrics("train_lipsync").read_text())
        lines.append(f"train_lipsync: {m.get('n_train_clips')} train / {m.get('n_val_clips')} val clips, "
                     f"{m.get('epochs_stage1')} + {m.get('epochs_stage2')} epochs ({m.get('steps')} steps, "
                     f"{m.get('train_seconds')} s, {m.get('train_samples_per_s', 0):.1f} windows/s, data wait "
                     f"{100 * (m.get('data_wait_fraction') or 0):.1f}%), val masked L1 {m.get('val_l1_masked', 0):.4f}, "
                     f"sync term {'on' if m.get('sync_on') else 'not yet on'}, perceptual {m.get('perceptual_backend')} "
                     f"-> {catalog.model('train_lipsync', 'generator') / 'generator.pt'}")
    if "generate_lipsync" in catalog.stages and catalog.metrics("generate_lipsync").exists():
        m = json.loads(catalog.metrics("generate_lipsync").read_text())
        lines.append(f"generate_lipsync: {m.get('outputs')} videos ({m.get('frames')} frames, {m.get('frames_per_s')} "
                     f"frames/s end to end), {m.get('quarantined')} quarantined -> "
                     f"{catalog.artifacts('generate_lipsync', 'videos')}/")
    if "train_discohead" in catalog.stages and catalog.metrics("train_discohead").exists():
        m = json.loads(catalog.metrics("train_discohead").read_text())
        lines.append(f"train_discohead: {m.get('variant')} at {m.get('image_size')} px, {m.get('n_train_clips')} train / "
                     f"{m.get('n_val_clips')} val clips, {m.get('epochs')} epochs ({m.get('steps')} steps, "
                     f"{m.get('train_seconds')} s, {m.get('train_samples_per_s', 0):.1f} frames/s, data wait "
                     f"{100 * (m.get('data_wait_fraction') or 0):.1f}%), val L1 {m.get('val_l1') or 0:.4f} (source warp "
                     f"alone {m.get('val_l1_source_warp') or 0:.4f}), perceptual {m.get('perceptual_backend')} -> "
                     f"{catalog.model('train_discohead', 'generator') / 'generator.pt'}")
    if "generate_discohead" in catalog.stages and catalog.metrics("generate_discohead").exists():
        m = json.loads(catalog.metrics("generate_discohead").read_text())
        lines.append(f"generate_discohead: {m.get('outputs')} outputs + their source-warp baselines ({m.get('frames')} "
                     f"frames, {m.get('frames_per_s')} frames/s end to end), {m.get('quarantined')} quarantined -> "
                     f"{catalog.artifacts('generate_discohead', 'videos')}/")
    if "train_stylemap" in catalog.stages and catalog.metrics("train_stylemap").exists():
        m = json.loads(catalog.metrics("train_stylemap").read_text())
        lines.append(f"train_stylemap: {m.get('n_train_clips')} train / {m.get('n_val_clips')} val clips, "
                     f"{m.get('epochs')} epochs ({m.get('steps')} steps, {m.get('train_seconds')} s, "
                     f"{m.get('train_samples_per_s', 0):.1f} pairs/s, data wait "
                     f"{100 * (m.get('data_wait_fraction') or 0):.1f}%), val L1 {m.get('val_l1') or 0:.4f}, val pose "
                     f"error {m.get('val_pose_err_deg') or 0:.1f} deg -> "
                     f"{catalog.model('train_stylemap', 'generator') / 'generator.pt'}")
    if "generate_stylemap" in catalog.stages and catalog.metrics("generate_stylemap").exists():
        m = json.loads(catalog.metrics("generate_stylemap").read_text())
        lines.append(f"generate_stylemap: {m.get('outputs')} videos ({m.get('frames')} frames, {m.get('frames_per_s')} "
                     f"frames/s), {m.get('quarantined')} quarantined; pose error median "
                     f"{m.get('pose_err_median_deg')} deg vs mean-pose baseline {m.get('baseline_pose_err_median_deg')} "
                     f"-> {catalog.artifacts('generate_stylemap', 'videos')}/")
    lines.extend(_styletalk_head2headfs_lines(catalog))
    return lines


def _num(value, digits: int) -> str:
    """`value` rounded for a summary line; "n/a" for a missing (None) figure."""
    return "n/a" if value is None else f"{value:.{digits}f}"


def _baselines(m: dict) -> str:
    """" + N baseline videos" of a generate stage's metrics; "" when it wrote none or does not say."""
    return f" + {m['baseline_outputs']} baseline videos" if m.get("baseline_outputs") else ""


def _styletalk_head2headfs_lines(catalog: Catalog) -> list[str]:
    """The StyleTalk (discriminators, generator, generation) and Head2HeadFS (initialisation, fine-tuning,
    generation) lines of `generator_lines`, from the metrics each stage writes."""
    lines = []

    def metrics(stage: str) -> dict | None:
        path = catalog.metrics(stage)
        return json.loads(path.read_text()) if stage in catalog.stages and path.exists() else None

    if (m := metrics("train_styletalk_disc")) is not None:
        lines.append(f"train_styletalk_disc: {m.get('n_train_clips')} train / {m.get('n_val_clips')} val clips, "
                     f"{m.get('train_seconds')} s, val sync accuracy {_num(m.get('val_sync_acc'), 3)}, val style "
                     f"accuracy {_num(m.get('val_style_acc'), 3)} -> "
                     f"{catalog.model('train_styletalk_disc', 'discriminators')}/")
    if (m := metrics("train_styletalk")) is not None:
        lines.append(f"train_styletalk: {m.get('n_train_clips')} train / {m.get('n_val_clips')} val clips, "
                     f"{m.get('epochs')} epochs ({m.get('steps')} steps, {m.get('train_seconds')} s, "
                     f"{_num(m.get('train_sequences_per_s'), 1)} sequences/s), val L1 {_num(m.get('val_l1'), 4)}, "
                     f"val style accuracy {_num(m.get('val_style_acc'), 3)} -> "
                     f"{catalog.model('train_styletalk', 'generator')}/")
    if (m := metrics("generate_styletalk")) is not None:
        lines.append(f"generate_styletalk: {m.get('outputs')} videos{_baselines(m)} "
                     f"({m.get('frames')} frames, {m.get('frames_per_s')} frames/s), {m.get('quarantined')} "
                     f"quarantined -> {catalog.artifacts('generate_styletalk', 'videos')}/")
    if (m := metrics("train_head2headfs")) is not None:
        lines.append(f"train_head2headfs: {m.get('n_clips')} clips of {m.get('n_identities')} identities, "
                     f"{m.get('epochs')} epochs ({m.get('steps')} steps, {m.get('train_seconds')} s, "
                     f"{_num(m.get('train_samples_per_s'), 1)} windows/s), perceptual {m.get('perceptual_backend')} "
                     f"-> {catalog.model('train_head2headfs', 'generator')}/")
    if (m := metrics("finetune_head2headfs")) is not None:
        lines.append(f"finetune_head2headfs: {m.get('finetuned')} of {m.get('targets')} targets fine-tuned "
                     f"({m.get('finetune_seconds')} s), {m.get('quarantined')} quarantined -> "
                     f"{catalog.model('finetune_head2headfs', 'generators')}/")
    if (m := metrics("generate_head2headfs")) is not None:
        lines.append(f"generate_head2headfs: {m.get('outputs')} videos ({m.get('self')} self / {m.get('cross')} "
                     f"cross-reenactment tasks){_baselines(m)}, {m.get('frames')} "
                     f"frames at {m.get('resolution')} px, {m.get('frames_per_s')} frames/s, {m.get('quarantined')} "
                     f"quarantined -> {catalog.artifacts('generate_head2headfs', 'videos')}/")
    return lines


def disk_bytes(path: Path) -> int:
    """Bytes of the regular files at or under `path` (symbolic links not followed: a linked DVC cache
    entry is counted once, in the cache); 0 when it does not exist."""
    if path.is_symlink() or not path.exists():
        return 0
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def stage_cost_lines(stage_wall_s: dict[str, float] | None = None, stage_status: dict[str, str] | None = None,
                     catalog: Catalog = CATALOG) -> list[str]:
    """Per stage (pipeline order): its wall time in this run and the disk use of its DVC outs.

    Args:
        stage_wall_s: seconds each stage ran in this `dvc repro` (`headflow.demo_run.follow_repro`);
            a stage without one shows its status ("cached") or "-" (`make summary`: no run to time).
        stage_status: "ran" / "cached" / "FAILED" per stage, as `demo_run` reports them.
        catalog: whose outs to measure (`Catalog.outs`: the stage folder, model folders, further files).

    Returns:
        Lines of a small table (stages with neither a time nor anything on disk left out), then the
        total and the DVC cache's size (`.dvc/cache`: a second copy of the outs unless `cache.type`
        links them). Empty when nothing is on disk and nothing ran.
    """
    wall, status = stage_wall_s or {}, stage_status or {}
    rows = []
    for name in catalog.stages:
        used = sum(disk_bytes(catalog.root / out) for out in catalog.outs(name))
        if name in wall or used:
            when = f"{wall[name]:.0f} s" if name in wall else status.get(name, "-")
            rows.append((name, when, used))
    if not rows:
        return []
    width = max(len(r[0]) for r in rows)
    lines = ["wall time and disk use per stage (its DVC outs):"]
    lines += [f"  {name:<{width}}  {when:>8}  {_mb(used):>10}" for name, when, used in rows]
    total = f"{sum(wall.values()):.0f} s" if wall else ""
    lines.append(f"  {'total':<{width}}  {total:>8}  {_mb(sum(r[2] for r in rows)):>10}")
    cache = disk_bytes(catalog.root / ".dvc" / "cache")
    if cache:
        lines.append(f"  DVC cache .dvc/cache: {_mb(cache)}")
    return lines


def render(stage_status: dict[str, str] | None = None, wall_s: float | None = None,
           catalog: Catalog = CATALOG, stage_wall_s: dict[str, float] | None = None) -> str:
    """The summary text of what `catalog` (default: the current folder's) holds; with `stage_wall_s`
    (seconds per stage of this run), each stage's wall time beside its disk use."""
    lines = ["", "== headflow summary =="]
    if stage_status:
        lines.append("stages: " + ", ".join(f"{s} ({st})" for s, st in stage_status.items()))
    clips_path, faces_path = catalog.manifest("ingest", "clips"), catalog.manifest("faces", "faces")
    sync_path, fits_path = catalog.manifest("sync_check", "clips"), catalog.manifest("fit3dmm", "fits")
    expressions_path = catalog.manifest("expressions", "expressions")
    quarantine_paths = {name: catalog.quarantine(name) for name, s in catalog.stages.items()
                        if "quarantine" in s.manifests}
    clips = _read(clips_path)
    quarantines = {s: q for s, p in quarantine_paths.items() if (q := _read(p)) is not None}
    if clips is not None:
        by_split = clips.split.value_counts().to_dict()
        lines.append(f"ingest: {len(clips)} clips accepted ({clips.speaker_id.nunique()} speakers, "
                     f"{clips.duration_s.sum() / 60:.1f} min; split {by_split}) -> {clips_path}")
        lines.extend(speakers_by_split(clips))
    faces = _read(faces_path)
    if faces is not None and len(faces):
        lines.append(f"faces: {len(faces)} clips tracked ({int(faces.n_frames.sum())} frames, detection rate "
                     f"mean {faces.detection_rate.mean():.3f}, jitter {faces.jitter_raw.median():.2f} -> "
                     f"{faces.jitter.median():.2f} % IOD) -> {faces_path}")
    expert = catalog.metrics("train_expert")
    if expert.exists():
        m = json.loads(expert.read_text())
        rec = m.get("offset_recovery")
        lines.append(f"train_expert: held-out {', '.join(m.get('held_out_speakers', []))} "
                     f"({m.get('held_out_clips')} clips) balanced accuracy {m.get('val_balanced_accuracy')}, "
                     f"offset recovery {'n/a' if rec is None else f'{100 * rec:.0f} %'}, "
                     f"{m.get('train_seconds')} s of training at {m.get('train_samples_per_s')} pairs/s "
                     f"-> {catalog.model('train_expert', 'expert') / 'last.pt'}")
    sync = catalog.metrics("sync_check")
    if sync.exists():
        m = json.loads(sync.read_text())
        if m.get("scored"):
            lines.append(f"sync_check ({m['mode']}): {m['scored']} of {m['clips']} clips scored, offset 0 for "
                         f"{m['offset_zero']}, histogram {m['offset_histogram']}, median LSE-C {m['median_lse_c']}; "
                         f"kept {m['kept']}, shifted {m['shifted']}, dropped {m['dropped']} -> {sync_path}")
    lines.extend(generator_lines(catalog))
    lines.extend(evaluation_lines(catalog))
    fits = _read(fits_path)
    if fits is not None and len(fits):
        jaw = fits.jaw_open_r.dropna()
        jaw_text = f", jaw-open r {jaw.median():.2f} vs demo truth" if len(jaw) else ""
        lines.append(f"fit3dmm: {len(fits)} clips fitted with {fits.model.iloc[0]} ({fits.n_id.iloc[0]} id / "
                     f"{fits.n_exp.iloc[0]} exp modes), reprojection {100 * fits.reproj_iod_median.median():.2f} % "
                     f"IOD median{jaw_text} -> {fits_path}")
    if expressions_path.exists():
        import pyarrow.parquet as pq

        meta = pq.read_schema(expressions_path).metadata or {}
        lines.append(f"expressions: {pq.ParquetFile(expressions_path).metadata.num_rows} frames, "
                     f"{meta.get(b'model', b'?').decode()} K_exp={meta.get(b'n_exp', b'?').decode()} -> {expressions_path}")
    for stage, q in quarantines.items():
        reasons = q.reason_code.value_counts().sort_index().to_dict()
        lines.append(f"{stage}: {len(q)} quarantined {reasons} -> {quarantine_paths[stage]}")
    corpus = _read(catalog.manifest("demo_corpus", "corpus"))
    if corpus is not None and quarantines:
        try:
            demo_root = P.load("ingest", catalog.root / "params.yaml").root
        except Exception:  # noqa: BLE001 - the summary must not fail on a params problem
            demo_root = catalog.stage("demo_corpus").folder
        verdicts = bad_input_verdicts(corpus, quarantines, demo_root)
        if len(verdicts):
            lines.append("deliberately bad demo inputs:")
            width = max(len(v) for v in verdicts.input)
            for v in verdicts.itertuples():
                lines.append(f"  {v.input:<{width}}  expected {v.expected:<26} got {v.got:<26} {v.verdict}")
    metrics = sorted(catalog.metrics_dir().glob("*.json"))
    if metrics:
        lines.append("metrics: " + ", ".join(m.as_posix() for m in metrics) + "  (dvc metrics show)")
    lines.extend(stage_cost_lines(stage_wall_s, stage_status, catalog))
    if wall_s is not None:
        lines.append(f"wall time: {wall_s:.0f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__).parse_args(argv)
    print(render())


if __name__ == "__main__":
    main()
