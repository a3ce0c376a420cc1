"""Evaluation: how the course measures every method, one module per kind of measurement.

- :mod:`course_lib.evaluation.clustering`       -- cluster accuracy (Hungarian matching), NMI, ARI.
- :mod:`course_lib.evaluation.probes`           -- linear and kNN probes of frozen features, at a few labels per class.
- :mod:`course_lib.evaluation.label_efficiency` -- accuracy vs labels per class over label draws, and its table.
- :mod:`course_lib.evaluation.reconstruction`   -- per-example reconstruction error, PSNR, anomaly AUROC.
- :mod:`course_lib.evaluation.generative`       -- Fréchet distance in a classifier's feature space, class coverage.
- :mod:`course_lib.evaluation.leaderboard`      -- Day 10's leaderboard of every method (metrics and JSON).
- :mod:`course_lib.evaluation.language_model`   -- masked-token accuracy, perplexity, unigram baseline, fill-mask.
"""
