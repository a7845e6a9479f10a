"""MLflow, the one way SpeechPrint logs: the store and the Tracker protocol that training writes to."""
