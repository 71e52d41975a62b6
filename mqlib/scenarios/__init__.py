"""Scripted, parameterised runs, one per chapter simulation. They return plain results that the
widgets draw and the tests assert."""
