"""From study to model: candidates refit and tested, promotion by evidence, comparisons."""
