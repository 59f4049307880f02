"""Generative Cooperative Learning (Zaheer et al., CVPR 2022): one module per concept.

    config      GCLConfig in sections, Stage, presets               (no torch)
    variants    the paper's variants as named configs               (no torch)
    models      the networks G and D
    labels      pseudo-labels and negative-learning targets
    data        the training data contract and row selection
    train       the training loop, stage by stage
    progress    a log line per epoch (losses, ETA), a bar on a terminal
    checkpoint  checkpoints with every random state
    store       the models file, and scoring with it

This package file imports nothing, so that reading settings (the workflow's DAG process
does) never loads torch.
"""
