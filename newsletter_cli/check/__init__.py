"""Checks of a built edition (size, links, images, content, accessibility); they return findings, never print."""
