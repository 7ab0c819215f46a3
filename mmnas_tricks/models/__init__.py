"""Mutables, candidate ops and searchable backbones / necks / heads."""
