"""Evaluation against ground truth, and the figures.

    metrics  frame AUC and the field's other frame-level metrics
    plots    ROC curves, score histograms, per-video frame scores, training curves

This package file imports nothing.
"""
