"""Decoding: video files and frame folders into frames and fixed-length segments.

    video          streaming decode, probing (frames, fps, truncation), segments
    windows        where segments lie in a video (counts, padded tail, frame_step's span)
    preprocessing  how an extractor wants its frames: resize, crops, scale, mean and std
    crops          which crops of a segment a network sees (torch-free facts)
    inputs         videos named on a command line or found in a folder, with their ids

This package file imports nothing; `crops` is read by the workflow's planning process,
which must stay torch-free.
"""
