"""Model building, the model file, and the Classifier interface every command uses."""
