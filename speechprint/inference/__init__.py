"""A trained model that stands on its own: the classifier, ensembles of them, the MLflow pyfunc."""
