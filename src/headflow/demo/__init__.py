"""The offline demo corpus (talking portraits with exact ground truth and deliberately bad inputs); used only by the `demo_corpus` stage and `demo_run`."""
