"""The support console (server-rendered pages) and its JSON API: see app.py."""
