"""Doors for people: the admin site (`site`), its pages (`pages`) and their read models (`selectors`)."""
