"""Evaluations of trained runs: each a function of latents or images returning a dict with fixed keys."""
