"""Synthetic datasets in the generic format, generated from a seed (no download).

    demo     pedestrians on a pavement with a few anomalies: the README's demo
    walkway         a grey noisy walkway with small anomalies: the benchmark of the levers
    pooled_walkway  the walkway with anomalies in most test frames, pooled as a real walkway
                    benchmark is: the benchmark on which the methods rank as on real footage

`gclvad.datasets.readers.generate_synthetic` picks one by name. This package file imports
nothing.
"""
