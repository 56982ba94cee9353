"""Market conventions as data: rating scales, the Moody's ↔ S&P map, and the holders' rule tables."""
