"""The training harness: knows no model family.

A family builds its networks and a small step object (named, unweighted loss terms) and calls
`fit`; the harness does devices and DDP (Lightning Fabric), seeding, sampling, the learning-rate
schedule, D/G alternation with lazy R1, EMA, checkpoints and the resume rule, the stall watch,
evaluation, DVCLive and the JSON history, sample grids. Modules:

    runtime     Fabric on CPU / GPU / torchrun DDP, seeding, rank 0
    config      `LoopConfig` (torch-free: params blocks embed it)
    loop        the step contract, `fit`
    terms       weighting named loss terms, the weight-name check, R1
    checkpoint  atomic checkpoints, data fingerprints, the resume rule
    schedule    warm-up + constant / cosine learning rate
    sampler     the seeded per-epoch permutation split across ranks
    stall       "the loss sits at a known no-learning value" warning
    ema         exponential moving average of a network
    logging     DVCLive, JSON history, progress bars
    samples     PNG sample grids

Import rule (tested): nothing here imports a family, a stage or any headflow module outside
`headflow.training`, `headflow.nn`, `headflow.losses` and `headflow.augment`.
"""
