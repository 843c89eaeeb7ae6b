"""The demo catalogue shipped with movierec: real films (facts in our own words) and simulated ratings.

catalogue.py reads and validates the film data files in data/, simulation.py generates the
deterministic simulated users and ratings, loader.py writes both to the database.
"""
