"""Torch layers only (imports torch, kornia and each other): the lip-sync expert network (`expert`)."""
