"""Feature extraction: segments of videos through a 3D CNN into per-video feature files.

    networks/   the extractors (ResNeXt-101, I3D, torchvision's): weights, speed, registry
    facts       what the workflow must know of each extractor before any job (torch-free)
    one_video   one video: decode in a thread, batch, run the network, write its file
    decoders    decoder processes: videos in, ready network input out
    shards      many videos in one process: one network, parallel decoders, resumable
    state       whether a video still has to be extracted (what an earlier run left)
    command     `gclvad extract`: feature files for videos outside the workflow

This package file imports nothing, so `facts` and `state` stay torch-free for the workflow.
"""
