"""Channels that carry a reply's text while it is being written."""
