"""Embedding models: ``backbones`` (registry of trunks + neck -> embedding), ``mobilefacenet``, and
``heads`` (softmax, ArcFace / sub-centre ArcFace, CosFace, triplet, contrastive: ``loss = head(emb, labels)``).

Models take aligned crops as defined by ``facedata.preprocess.Preprocess``.
"""
from .zoo import FaceEmbedder, ModelNotFoundError, load_model

__all__ = ["FaceEmbedder", "ModelNotFoundError", "load_model"]
