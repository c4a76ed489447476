"""Fused CPU routines for chains of covariance recursions (see ``kernels.fused.engine``)."""
