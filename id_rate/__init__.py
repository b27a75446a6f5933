"""Evaluation protocols: the ID-rate table, ROC, LFW 10-fold, open-set identification (to come with the
evaluation issue). Pair files and verification sets are read by ``facedata.lfw`` and
``facedata.insightface_io``."""
