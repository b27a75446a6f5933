"""Embedding backbones, heads and losses (to come with the models issue).

Models take aligned crops as defined by ``facedata.preprocess.Preprocess`` and return embeddings.
"""
