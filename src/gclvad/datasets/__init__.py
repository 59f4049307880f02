"""Datasets: which videos there are, their splits and labels, and what each video holds.

    readers        load_dataset(spec): a config entry -> its `Video`s (dispatch on format)
    base           Video, FrameMask, Intervals, the train/scored split, safe video ids
    generic        a practitioner's own videos from a CSV manifest
    ucf_crime      UCF-Crime: official lists and temporal annotations
    shanghaitech   ShanghaiTech in Zhong et al.'s split
    published      published per-video features (RTFM layout) instead of videos
    segment_index  one row per video: decoded once, usable or why not
    synthetic/     generated datasets: demo (the README's), walkway (development benchmark)

This package file imports nothing: the workflow's planning process imports single modules
of it and must stay torch-free.
"""
