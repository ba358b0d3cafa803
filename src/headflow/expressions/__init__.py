"""The `expressions` stage: per-frame expression coefficients and head pose of every fitted clip in
one table, and the Deep3DFaceRecon / StyleTalk `.mat` export (`deep3d`)."""
