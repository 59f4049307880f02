"""Synthetic datasets in the generic format, generated from a seed (no download).

    demo     pedestrians on a pavement with a few anomalies: the README's demo
    walkway  a grey noisy walkway with small anomalies: the development benchmark

`gclvad.datasets.readers.generate_synthetic` picks one by name. This package file imports
nothing.
"""
