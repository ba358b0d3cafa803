"""The evaluation: the `train_judge` and `evaluate` stages, the scoring of generated outputs against
ground truth and baselines, and the offline report pages (`reports/report.html`, `reports/compare.html`)."""
