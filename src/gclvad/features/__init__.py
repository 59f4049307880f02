"""The feature store: segment features of videos in HDF5 files, and how training reads them.

    files        per-video files and the merged file: write, read, merge, attributes, provenance
    feature_set  FeatureSet: the segment rows of chosen videos, crops used as a run uses them
    npy          published .npy arrays read in place: header, shape, values checked
    published    the merged file of published features, linking the .npy files without a copy

This package file imports nothing.
"""
