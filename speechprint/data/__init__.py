"""Archive reading, region table, targets, splits and audio decoding."""
