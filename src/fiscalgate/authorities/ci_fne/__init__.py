"""Côte d'Ivoire DGI FNE (Facture Normalisée Électronique): client, conversion and simulator.

Sources and decisions: see README.md in this folder.
"""
