"""Reader-study screens: the blinded reading-session window and the study editor dialog."""
