"""Presentation shared by the lab, populations and the command line: PNG charts, tables
(Markdown or rich), and progress with an ETA."""
