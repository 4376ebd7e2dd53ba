"""Drawings made by the service: SVG of the computational graph and of descent cost curves.

Pure Python over the JSON the API returns (plain dicts, lists and floats): it never imports the web
framework, so any client holding a /gradient or /descent response can draw the same pictures.
"""
